package cloudflare

import (
	"context"
	"fmt"
	"strings"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// DryRuns are the cloudflare.* actions read, not written: the record or
// the load balancer's pools as they are, and as the step would set them.
func (a *Actions) DryRuns() map[string]func(context.Context, runbooks.StepInput) ([]runbooks.Change, error) {
	return map[string]func(context.Context, runbooks.StepInput) ([]runbooks.Change, error){
		"cloudflare.dnsSwitch": a.dnsDryRun,
		"cloudflare.lbFailover": func(ctx context.Context, in runbooks.StepInput) ([]runbooks.Change, error) {
			var args LBFailoverArgs
			if err := in.DecodeArgs(&args); err != nil {
				return nil, err
			}
			_, _, lb, _, err := a.loadBalancer(ctx, args.Zone, args.LoadBalancer)
			if err != nil {
				return nil, err
			}
			after := []string{}
			if args.DRPool != "" {
				after = append(after, args.DRPool+" first")
			}
			if args.PrimaryPool != "" {
				after = append(after, args.PrimaryPool+" disabled")
			}
			return []runbooks.Change{{What: "load balancer " + args.LoadBalancer + " default pools",
				Before: strings.Join(lb.DefaultPools, ", "), After: strings.Join(after, "; ")}}, nil
		},
		"cloudflare.lbRestore": func(ctx context.Context, in runbooks.StepInput) ([]runbooks.Change, error) {
			var args LBRestoreArgs
			if err := in.DecodeArgs(&args); err != nil {
				return nil, err
			}
			_, _, lb, _, err := a.loadBalancer(ctx, args.Zone, args.LoadBalancer)
			if err != nil {
				return nil, err
			}
			return []runbooks.Change{{What: "load balancer " + args.LoadBalancer + " default pools",
				Before: strings.Join(lb.DefaultPools, ", "), After: strings.Join(args.DefaultPools, ", ")}}, nil
		},
	}
}

func (a *Actions) dnsDryRun(ctx context.Context, in runbooks.StepInput) ([]runbooks.Change, error) {
	var args DNSSwitchArgs
	if err := in.DecodeArgs(&args); err != nil {
		return nil, err
	}
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	z, err := a.zone(ctx, c, args.Zone)
	if err != nil {
		return nil, err
	}
	records, err := c.recordsNamed(ctx, z.ID, args.Record)
	if err != nil {
		return nil, classify("list records", err)
	}
	ch := runbooks.Change{What: "DNS record " + args.Record}
	for _, r := range records {
		if r.Name == args.Record {
			ch.Before = fmt.Sprintf("%s %s (ttl %d)", r.Type, r.Content, int(r.TTL))
		}
	}
	ttl := "unchanged"
	if args.TTL > 0 {
		ttl = fmt.Sprint(args.TTL)
	}
	ch.After = fmt.Sprintf("%s (ttl %s)", args.To, ttl)
	if runbooks.HasRefs(args.To) {
		ch.Note = "the target is an earlier step's output: known when the step runs"
	}
	return []runbooks.Change{ch}, nil
}
