package cloudflare

import (
	"context"

	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/load_balancers"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/user"
	"github.com/cloudflare/cloudflare-go/v6/zones"
)

// api is the part of cloudflare-go lifeboat calls: four product services
// built from their own packages. The SDK's root package (its Client and F)
// imports every Cloudflare product, ~100 packages and about two minutes of
// a cold build on two cores, for four of them. It takes no defaults from
// the environment (CLOUDFLARE_API_TOKEN and the like): the worker's
// configuration names the token.
type api struct {
	zones *zones.ZoneService
	dns   *dns.DNSService
	lbs   *load_balancers.LoadBalancerService
	token *user.TokenService
}

func newAPI(opts ...option.RequestOption) *api {
	opts = append([]option.RequestOption{option.WithEnvironmentProduction()}, opts...)
	return &api{zones.NewZoneService(opts...), dns.NewDNSService(opts...), load_balancers.NewLoadBalancerService(opts...), user.NewTokenService(opts...)}
}

// apiError is the SDK's error for an API response that is not a success.
type apiError = dns.Error

// set marks a request parameter present with value v: what the SDK's root
// F does (its Field type is internal, so it is set through its fields).
func set[T any](value *T, present *bool, v T) { *value, *present = v, true }

// record is what lifeboat writes into a DNS record.
type record struct {
	Name, Type, Content, Comment string
	TTL                          int
	Proxied                      bool
}

func (c *api) zonesNamed(ctx context.Context, name string) ([]zones.Zone, error) {
	var q zones.ZoneListParams
	set(&q.Name.Value, &q.Name.Present, name)
	page, err := c.zones.List(ctx, q)
	if err != nil {
		return nil, err
	}
	return page.Result, nil
}

func (c *api) recordsNamed(ctx context.Context, zoneID, name string) ([]dns.RecordResponse, error) {
	var q dns.RecordListParams
	var exact dns.RecordListParamsName
	set(&exact.Exact.Value, &exact.Exact.Present, name)
	set(&q.ZoneID.Value, &q.ZoneID.Present, zoneID)
	set(&q.Name.Value, &q.Name.Present, exact)
	page, err := c.dns.Records.List(ctx, q)
	if err != nil {
		return nil, err
	}
	return page.Result, nil
}

func (c *api) editRecord(ctx context.Context, zoneID, id string, r record) error {
	var p dns.RecordEditParams
	var b dns.RecordEditParamsBody
	set(&p.ZoneID.Value, &p.ZoneID.Present, zoneID)
	set(&b.Name.Value, &b.Name.Present, r.Name)
	set(&b.Type.Value, &b.Type.Present, dns.RecordEditParamsBodyType(r.Type))
	set(&b.Content.Value, &b.Content.Present, r.Content)
	set(&b.TTL.Value, &b.TTL.Present, dns.TTL(r.TTL))
	set(&b.Proxied.Value, &b.Proxied.Present, r.Proxied)
	set(&b.Comment.Value, &b.Comment.Present, r.Comment)
	p.Body = b
	_, err := c.dns.Records.Edit(ctx, id, p)
	return err
}

func (c *api) newRecord(ctx context.Context, zoneID string, r record) (string, error) {
	var p dns.RecordNewParams
	var b dns.RecordNewParamsBody
	set(&p.ZoneID.Value, &p.ZoneID.Present, zoneID)
	set(&b.Name.Value, &b.Name.Present, r.Name)
	set(&b.Type.Value, &b.Type.Present, dns.RecordNewParamsBodyType(r.Type))
	set(&b.Content.Value, &b.Content.Present, r.Content)
	set(&b.TTL.Value, &b.TTL.Present, dns.TTL(r.TTL))
	set(&b.Proxied.Value, &b.Proxied.Present, r.Proxied)
	set(&b.Comment.Value, &b.Comment.Present, r.Comment)
	p.Body = b
	created, err := c.dns.Records.New(ctx, p)
	if err != nil {
		return "", err
	}
	return created.ID, nil
}

func (c *api) getRecord(ctx context.Context, zoneID, id string) (*dns.RecordResponse, error) {
	var q dns.RecordGetParams
	set(&q.ZoneID.Value, &q.ZoneID.Present, zoneID)
	return c.dns.Records.Get(ctx, id, q)
}

func (c *api) loadBalancers(ctx context.Context, zoneID string) ([]load_balancers.LoadBalancer, error) {
	var q load_balancers.LoadBalancerListParams
	set(&q.ZoneID.Value, &q.ZoneID.Present, zoneID)
	page, err := c.lbs.List(ctx, q)
	if err != nil {
		return nil, err
	}
	return page.Result, nil
}

func (c *api) pools(ctx context.Context, accountID string) ([]load_balancers.Pool, error) {
	var q load_balancers.PoolListParams
	set(&q.AccountID.Value, &q.AccountID.Present, accountID)
	page, err := c.lbs.Pools.List(ctx, q)
	if err != nil {
		return nil, err
	}
	return page.Result, nil
}

func (c *api) setDefaultPools(ctx context.Context, zoneID, lbID string, pools []string) error {
	var p load_balancers.LoadBalancerEditParams
	set(&p.ZoneID.Value, &p.ZoneID.Present, zoneID)
	set(&p.DefaultPools.Value, &p.DefaultPools.Present, pools)
	_, err := c.lbs.Edit(ctx, lbID, p)
	return err
}

func (c *api) setPoolEnabled(ctx context.Context, accountID, poolID string, enabled bool) error {
	var p load_balancers.PoolEditParams
	set(&p.AccountID.Value, &p.AccountID.Present, accountID)
	set(&p.Enabled.Value, &p.Enabled.Present, enabled)
	_, err := c.lbs.Pools.Edit(ctx, poolID, p)
	return err
}
