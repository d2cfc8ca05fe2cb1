package cloudflare

import (
	"context"
	"slices"
	"strings"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// LBRestoreArgs are cloudflare.lbRestore's arguments: what lbFailover
// reported as the load balancer's state before it (its outputs).
type LBRestoreArgs struct {
	Zone         string   `json:"zone"`
	LoadBalancer string   `json:"loadBalancer"`
	DefaultPools []string `json:"defaultPools"`
	// EnablePool is re-enabled (the primary pool lbFailover disabled).
	EnablePool string `json:"enablePool"`
}

// LBRestore puts a load balancer back as it was before lbFailover: its
// default pool order and, when given, the primary pool enabled. It is
// idempotent: a retry finds the work done.
func (a *Actions) LBRestore(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args LBRestoreArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	c, z, lb, pool, err := a.loadBalancer(ctx, args.Zone, args.LoadBalancer)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	var did []string
	if args.EnablePool != "" {
		p, err := pool(args.EnablePool)
		if err != nil {
			return runbooks.StepResult{}, err
		}
		if !p.Enabled {
			if err := c.setPoolEnabled(ctx, z.Account.ID, p.ID, true); err != nil {
				return runbooks.StepResult{}, classify("enable pool "+args.EnablePool, err)
			}
		}
		did = append(did, args.EnablePool+" enabled")
	}
	if len(args.DefaultPools) > 0 {
		if !slices.Equal(lb.DefaultPools, args.DefaultPools) {
			if err := c.setDefaultPools(ctx, z.ID, lb.ID, args.DefaultPools); err != nil {
				return runbooks.StepResult{}, classify("edit load balancer "+args.LoadBalancer, err)
			}
		}
		did = append(did, "default pools back to "+strings.Join(args.DefaultPools, ", "))
	}
	return runbooks.StepResult{Summary: args.LoadBalancer + ": " + strings.Join(did, ", "),
		Outputs: map[string]any{"previousDefaultPools": lb.DefaultPools}}, nil
}
