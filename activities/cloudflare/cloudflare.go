// Package cloudflare implements cloudflare.dnsSwitch and cloudflare.lbFailover
// with cloudflare-go v6, the maintained major of the official Go SDK.
package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/load_balancers"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/zones"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/activities/attempt"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Actions calls the Cloudflare API. Token returns the API token at run time
// (read from the worker's environment or a file; never from a runbook).
type Actions struct {
	Token   func() (string, error)
	BaseURL string // empty: the real API; tests point it at the emulator
	HTTP    *http.Client
}

func (a *Actions) client() (*api, error) {
	token, err := a.Token()
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("cloudflare: "+err.Error(), "ConfigError", nil)
	}
	opts := []option.RequestOption{option.WithAPIToken(token), option.WithMaxRetries(1)}
	if a.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(a.BaseURL))
	}
	if a.HTTP != nil {
		opts = append(opts, option.WithHTTPClient(a.HTTP))
	}
	return newAPI(opts...), nil
}

// classify turns an API error into what an on-call engineer can act on:
// 403 and other 4xx are not retryable; 429 and 5xx are, after Retry-After.
func classify(what string, err error) error {
	var apiErr *apiError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("cloudflare %s: %w", what, err)
	}
	var msgs []string
	for _, e := range apiErr.Errors {
		msgs = append(msgs, fmt.Sprintf("%s (code %d)", e.Message, int(e.Code)))
	}
	detail := strings.Join(msgs, "; ")
	switch status := apiErr.StatusCode; {
	case status == http.StatusForbidden:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("cloudflare %s: 403 %s — the API token lacks the permission for this (DNS edit or load-balancer edit on the zone): issue a token with it and retry the step", what, detail), "CloudflareForbidden", nil)
	case status == http.StatusTooManyRequests || status >= 500:
		delay := time.Duration(0)
		if apiErr.Response != nil {
			if s, err := strconv.Atoi(apiErr.Response.Header.Get("Retry-After")); err == nil {
				delay = time.Duration(s) * time.Second
			}
		}
		return temporal.NewApplicationErrorWithOptions(fmt.Sprintf("cloudflare %s: %d %s (retrying)", what, status, detail), "CloudflareUnavailable",
			temporal.ApplicationErrorOptions{NextRetryDelay: delay})
	case status >= 400:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("cloudflare %s: %d %s — fix the step's arguments", what, status, detail), "CloudflareRejected", nil)
	}
	return fmt.Errorf("cloudflare %s: %w", what, err)
}

func (a *Actions) zone(ctx context.Context, c *api, name string) (zones.Zone, error) {
	found, err := c.zonesNamed(ctx, name)
	if err != nil {
		return zones.Zone{}, classify("list zones", err)
	}
	for _, z := range found {
		if z.Name == name {
			return z, nil
		}
	}
	return zones.Zone{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("cloudflare: zone %s not found (or not visible to this token)", name), "CloudflareZoneNotFound", nil)
}

// DNSSwitchArgs are cloudflare.dnsSwitch's arguments.
type DNSSwitchArgs struct {
	Zone    string `json:"zone"`
	Record  string `json:"record"`
	To      string `json:"to"`
	Type    string `json:"type"`
	TTL     int    `json:"ttl"`
	Proxied *bool  `json:"proxied"`
}

// recordValue is what a record pointed at, before or after the switch.
type recordValue struct {
	Type    string `json:"type"`
	Content string `json:"content"`
	TTL     int    `json:"ttl"`
	Proxied bool   `json:"proxied"`
}

func (v recordValue) asMap() map[string]any {
	return map[string]any{"type": v.Type, "content": v.Content, "ttl": v.TTL, "proxied": v.Proxied}
}

// commentPrefix marks the record's comment with the value it had before
// lifeboat switched it, so a retried switch still reports the true previous value.
const commentPrefix = "lifeboat previous="

// DNSSwitch points a record at the DR target with the runbook's TTL, reads it
// back, and returns the previous value for a failback step. Switching a record
// that already points at the target changes nothing.
func (a *Actions) DNSSwitch(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args DNSSwitchArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	want := recordValue{Type: args.Type, Content: args.To, TTL: args.TTL}
	if want.Type == "" {
		want.Type = inferType(args.To)
	}
	if want.TTL == 0 {
		want.TTL = 1
	}
	c, err := a.client()
	if err != nil {
		return runbooks.StepResult{}, err
	}
	z, err := a.zone(ctx, c, args.Zone)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	records, err := c.recordsNamed(ctx, z.ID, args.Record)
	if err != nil {
		return runbooks.StepResult{}, classify("list records", err)
	}
	var matching []*dns.RecordResponse
	for i := range records {
		if r := records[i]; r.Name == args.Record && (r.Type == "A" || r.Type == "AAAA" || r.Type == "CNAME") {
			matching = append(matching, &records[i])
		}
	}
	if len(matching) > 1 {
		// Round-robin records: moving one would leave the others sending
		// traffic to the lost site while the step reported success.
		var names []string
		for _, r := range matching {
			names = append(names, string(r.Type)+" "+r.Content)
		}
		sort.Strings(names)
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"cloudflare.dnsSwitch: %s has %d records (%s) and one switch would move only one of them; nothing was changed. Point the name at one record (or a load balancer with cloudflare.lbFailover), then retry",
			args.Record, len(matching), strings.Join(names, ", ")), "CloudflareAmbiguousRecord", nil)
	}
	var current *dns.RecordResponse
	if len(matching) == 1 {
		current = matching[0]
	}
	// The tag names this very step of this very run: only its own earlier
	// attempt's note is trusted, never a comment an older run left behind.
	tag := " (" + in.WorkflowID + "/" + in.RunID + "/" + in.StepID + ")"
	var previous recordValue
	var id string
	if current != nil {
		previous = recordValue{Type: string(current.Type), Content: current.Content, TTL: int(current.TTL), Proxied: current.Proxied}
		if p, ok := parsePrevious(current.Comment, tag); ok {
			previous = p // an earlier attempt of this step already switched it
		}
		if args.Proxied == nil {
			want.Proxied = current.Proxied
		}
		id = current.ID
	}
	if args.Proxied != nil {
		want.Proxied = *args.Proxied
	}
	rec := record{Name: args.Record, Type: want.Type, Content: want.Content, TTL: want.TTL, Proxied: want.Proxied,
		Comment: commentPrefix + formatPrevious(previous) + tag}
	switch {
	case current != nil && string(current.Type) == want.Type && current.Content == want.Content && int(current.TTL) == want.TTL && current.Proxied == want.Proxied:
		// already switched: nothing to change
	case current != nil:
		// One write, even when the type changes (A → CNAME): the API edits a
		// record's type in place, so the name is never without a record.
		if err := c.editRecord(ctx, z.ID, id, rec); err != nil {
			return runbooks.StepResult{}, classify("edit "+args.Record, err)
		}
	default:
		if id, err = c.newRecord(ctx, z.ID, rec); err != nil {
			return runbooks.StepResult{}, classify("create "+args.Record, err)
		}
	}
	got, err := c.getRecord(ctx, z.ID, id)
	if err != nil {
		return runbooks.StepResult{}, classify("read back "+args.Record, err)
	}
	if got.Content != want.Content || int(got.TTL) != want.TTL {
		return runbooks.StepResult{}, fmt.Errorf("cloudflare: %s reads back as %s %s ttl %d, not %s ttl %d", args.Record, got.Type, got.Content, int(got.TTL), want.Content, want.TTL)
	}
	return runbooks.StepResult{
		Summary: fmt.Sprintf("%s %s → %s (ttl %d; was %s %s)", args.Record, want.Type, want.Content, want.TTL, orNone(previous.Type), orNone(previous.Content)),
		Outputs: map[string]any{"recordId": id, "previous": previous.asMap(), "current": want.asMap()},
	}, nil
}

func inferType(to string) string {
	if ip := net.ParseIP(to); ip != nil {
		if ip.To4() != nil {
			return "A"
		}
		return "AAAA"
	}
	return "CNAME"
}

func formatPrevious(v recordValue) string {
	if v.Type == "" {
		return "none"
	}
	return fmt.Sprintf("%s:%s:%d:%t", v.Type, v.Content, v.TTL, v.Proxied)
}

// parsePrevious reads the previous value an earlier attempt of the step
// (tag) wrote into the record's comment.
func parsePrevious(comment, tag string) (recordValue, bool) {
	if !strings.HasPrefix(comment, commentPrefix) || !strings.HasSuffix(comment, tag) {
		return recordValue{}, false
	}
	s, _, _ := strings.Cut(strings.TrimPrefix(comment, commentPrefix), " ")
	if s == "none" {
		return recordValue{}, true
	}
	// TYPE:CONTENT:TTL:PROXIED, where CONTENT may hold colons itself (an
	// AAAA record's IPv6 address): the type is the first field, the TTL and
	// proxied flag the last two, the content everything between.
	parts := strings.Split(s, ":")
	if len(parts) < 4 {
		return recordValue{}, false
	}
	n := len(parts)
	ttl, _ := strconv.Atoi(parts[n-2])
	return recordValue{Type: parts[0], Content: strings.Join(parts[1:n-2], ":"), TTL: ttl, Proxied: parts[n-1] == "true"}, true
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// loadBalancer finds a zone's load balancer by name, and returns a lookup of
// the account's pools by name.
func (a *Actions) loadBalancer(ctx context.Context, zone, name string) (*api, zones.Zone, *load_balancers.LoadBalancer, func(string) (load_balancers.Pool, error), error) {
	c, err := a.client()
	if err != nil {
		return nil, zones.Zone{}, nil, nil, err
	}
	z, err := a.zone(ctx, c, zone)
	if err != nil {
		return nil, zones.Zone{}, nil, nil, err
	}
	lbs, err := c.loadBalancers(ctx, z.ID)
	if err != nil {
		return nil, zones.Zone{}, nil, nil, classify("list load balancers", err)
	}
	var lb *load_balancers.LoadBalancer
	for i := range lbs {
		if lbs[i].Name == name {
			lb = &lbs[i]
		}
	}
	if lb == nil {
		return nil, zones.Zone{}, nil, nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("cloudflare: no load balancer %s in zone %s", name, zone), "CloudflareNotFound", nil)
	}
	pools, err := c.pools(ctx, z.Account.ID)
	if err != nil {
		return nil, zones.Zone{}, nil, nil, classify("list pools", err)
	}
	byName := map[string]load_balancers.Pool{}
	for _, p := range pools {
		byName[p.Name] = p
	}
	pool := func(name string) (load_balancers.Pool, error) {
		p, ok := byName[name]
		if !ok {
			return p, temporal.NewNonRetryableApplicationError(fmt.Sprintf("cloudflare: no pool %q in the account of %s", name, zone), "CloudflareNotFound", nil)
		}
		return p, nil
	}
	return c, z, lb, pool, nil
}

// lbBefore is a load balancer's state before lbFailover changed it.
type lbBefore struct {
	DefaultPools      []string `json:"defaultPools"`
	PrimaryWasEnabled bool     `json:"primaryWasEnabled"`
}

// LBFailoverArgs are cloudflare.lbFailover's arguments.
type LBFailoverArgs struct {
	Zone         string `json:"zone"`
	LoadBalancer string `json:"loadBalancer"`
	PrimaryPool  string `json:"primaryPool"`
	DRPool       string `json:"drPool"`
}

// LBFailover disables the primary pool and/or makes the DR pool the first
// default pool, returning the previous pool order and state for a failback.
func (a *Actions) LBFailover(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args LBFailoverArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	c, z, lb, pool, err := a.loadBalancer(ctx, args.Zone, args.LoadBalancer)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	// What the load balancer looked like before the run: read once, on the
	// first attempt, and carried to retries (which see what it wrote).
	before := lbBefore{DefaultPools: append([]string(nil), lb.DefaultPools...)}
	if args.PrimaryPool != "" {
		p, err := pool(args.PrimaryPool)
		if err != nil {
			return runbooks.StepResult{}, err
		}
		before.PrimaryWasEnabled = p.Enabled
	}
	if !attempt.Carried(ctx, &before) {
		attempt.Record(ctx, before)
	}
	outputs := map[string]any{"previousDefaultPools": before.DefaultPools}
	var did []string
	if args.DRPool != "" {
		dr, err := pool(args.DRPool)
		if err != nil {
			return runbooks.StepResult{}, err
		}
		if len(lb.DefaultPools) == 0 || lb.DefaultPools[0] != dr.ID {
			order := []string{dr.ID}
			for _, id := range lb.DefaultPools {
				if id != dr.ID {
					order = append(order, id)
				}
			}
			if err := c.setDefaultPools(ctx, z.ID, lb.ID, order); err != nil {
				return runbooks.StepResult{}, classify("edit load balancer "+args.LoadBalancer, err)
			}
		}
		did = append(did, args.DRPool+" is the default pool")
	}
	if args.PrimaryPool != "" {
		p, err := pool(args.PrimaryPool)
		if err != nil {
			return runbooks.StepResult{}, err
		}
		outputs["primaryWasEnabled"] = before.PrimaryWasEnabled
		if p.Enabled {
			if err := c.setPoolEnabled(ctx, z.Account.ID, p.ID, false); err != nil {
				return runbooks.StepResult{}, classify("disable pool "+args.PrimaryPool, err)
			}
		}
		did = append(did, args.PrimaryPool+" disabled")
	}
	return runbooks.StepResult{Summary: args.LoadBalancer + ": " + strings.Join(did, ", "), Outputs: outputs}, nil
}
