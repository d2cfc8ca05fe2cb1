package cloudflare

import (
	"context"
	"fmt"

	"github.com/lifeboat-dr/lifeboat/activities/failure"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Prechecks are the cloudflare.* actions' pre-flight checks: the token is
// active (GET /user/tokens/verify), the zone is readable with it, and the
// record or load balancer the step changes exists. Whether the token may
// edit cannot be asked without editing: a token without the edit scope
// fails at the step (403, non-retryable, with the scope to add).
func (a *Actions) Prechecks() map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
	lb := func(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
		var args struct {
			Zone         string `json:"zone"`
			LoadBalancer string `json:"loadBalancer"`
		}
		if err := in.DecodeArgs(&args); err != nil {
			return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
		}
		out, ok := a.tokenActive(ctx)
		if !ok {
			return out
		}
		name := "load balancer " + args.LoadBalancer + " exists"
		if _, _, _, _, err := a.loadBalancer(ctx, args.Zone, args.LoadBalancer); err != nil {
			return append(out, runbooks.Fail(name, failure.Message(err), "check the zone and the load balancer's hostname"))
		}
		return append(out, runbooks.Pass(name, "in zone "+args.Zone))
	}
	return map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult{
		"cloudflare.dnsSwitch":  a.dnsPrecheck,
		"cloudflare.lbFailover": lb,
		"cloudflare.lbRestore":  lb,
	}
}

func (a *Actions) dnsPrecheck(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
	var args DNSSwitchArgs
	if err := in.DecodeArgs(&args); err != nil {
		return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
	}
	out, ok := a.tokenActive(ctx)
	if !ok {
		return out
	}
	c, err := a.client()
	if err != nil {
		return append(out, runbooks.Fail("token configured", failure.Message(err), "set the worker's Cloudflare token (cloudflare.tokenEnv)"))
	}
	z, err := a.zone(ctx, c, args.Zone)
	if err != nil {
		return append(out, runbooks.Fail("zone "+args.Zone+" readable", failure.Message(err), "give the token Zone:Read on "+args.Zone+", or fix the zone name"))
	}
	out = append(out, runbooks.Pass("zone "+args.Zone+" readable", "zone id "+z.ID))
	name := "record " + args.Record + " exists"
	records, err := c.recordsNamed(ctx, z.ID, args.Record)
	if err != nil {
		return append(out, runbooks.Fail(name, failure.Message(classify("list records", err)), "give the token DNS:Read on "+args.Zone))
	}
	for _, r := range records {
		if r.Name == args.Record {
			return append(out, runbooks.Pass(name, fmt.Sprintf("%s %s", r.Type, r.Content)))
		}
	}
	return append(out, runbooks.Fail(name, "zone "+args.Zone+" has no record "+args.Record,
		"create the record (the switch changes an existing record, it does not invent one), or fix its name"))
}

// tokenActive asks Cloudflare whether the configured token is active.
func (a *Actions) tokenActive(ctx context.Context) ([]runbooks.CheckResult, bool) {
	const name = "Cloudflare token active"
	c, err := a.client()
	if err != nil {
		return []runbooks.CheckResult{runbooks.Fail(name, failure.Message(err), "configure the worker's Cloudflare token (cloudflare.tokenEnv)")}, false
	}
	res, err := c.token.Verify(ctx)
	if err != nil {
		return []runbooks.CheckResult{runbooks.Fail(name, failure.Message(classify("verify token", err)), "issue a new API token and set it in the worker's environment")}, false
	}
	if res.Status != "active" {
		msg := "the token is " + string(res.Status)
		if !res.ExpiresOn.IsZero() {
			msg += " (expires_on " + res.ExpiresOn.UTC().Format("2006-01-02 15:04 UTC") + ")"
		}
		return []runbooks.CheckResult{runbooks.Fail(name, msg, "roll the API token (or extend its expiry) and restart the worker with the new one")}, false
	}
	return []runbooks.CheckResult{runbooks.Pass(name, "active")}, true
}
