package activities

import (
	"context"
	"fmt"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// resolveTeardown resolves a teardown run (lifeboat teardown DRILL): the
// teardown recorded in that drill's own history, never a text the request
// carries (an inline text under a catalog name could delete anything), and
// only for a run that was a drill.
func (r *Resolver) resolveTeardown(ctx context.Context, in runbooks.ResolveInput) (runbooks.Resolved, error) {
	if in.TeardownOf == "" || in.Inline != "" || in.Runbook != "" {
		return runbooks.Resolved{}, refuse("TeardownRefused", `a teardown runs only the teardown a drill recorded: name the drill, {"mode": "teardown", "teardownOf": "DRILL-RUN"} (lifeboat teardown DRILL-RUN)`)
	}
	if r.Drills == nil {
		return runbooks.Resolved{}, refuse("TeardownRefused", "this worker has no Temporal client to read drill "+in.TeardownOf+" from")
	}
	res, mode, err := r.Drills(ctx, in.TeardownOf)
	if err != nil {
		return runbooks.Resolved{}, refuseUnlessUnanswered("TeardownRefused", fmt.Sprintf("drill %s cannot be torn down: %v", in.TeardownOf, err), err)
	}
	if mode != "drill" {
		return runbooks.Resolved{}, refuse("TeardownRefused", fmt.Sprintf("run %s is a %s, not a drill: only a drill has a teardown", in.TeardownOf, mode))
	}
	if err := res.Parse(); err != nil {
		return runbooks.Resolved{}, refuse("TeardownRefused", fmt.Sprintf("drill %s recorded a runbook that does not parse: %v", in.TeardownOf, err))
	}
	return r.admit(ctx, res.Runbook, []byte(res.Source), in)
}
