package postgres

import (
	"context"
	"fmt"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// DryRuns are the postgres.* actions' dry runs: what a promotion would
// change, read from the server (or, in a drill, the clone it would make).
func (a *Actions) DryRuns() map[string]func(context.Context, runbooks.StepInput) ([]runbooks.Change, error) {
	return map[string]func(context.Context, runbooks.StepInput) ([]runbooks.Change, error){
		"postgres.promote": a.promoteDryRun,
	}
}

func (a *Actions) promoteDryRun(ctx context.Context, in runbooks.StepInput) ([]runbooks.Change, error) {
	var args PromoteArgs
	if err := in.DecodeArgs(&args); err != nil {
		return nil, err
	}
	if in.Drill() {
		inst, err := a.Local.drillClone(args.Clone, in, "postgres.promote")
		if err != nil {
			return nil, err
		}
		return []runbooks.Change{{What: "PostgreSQL drill clone " + args.Clone + " (" + inst.DataDir + ")", Before: "none",
			After: "a copy of the standby (pg_basebackup), promoted; the standby itself unchanged"}}, nil
	}
	c := args.Conn
	conn, err := a.connect(ctx, c, in, "postgres.promote")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	standby, err := inRecovery(ctx, conn)
	if err != nil {
		return nil, err
	}
	server := fmt.Sprintf("PostgreSQL server %s:%d", conn.Config().Host, conn.Config().Port)
	if !standby {
		return nil, nil // already a primary: the promotion changes nothing
	}
	s, err := readReplica(ctx, conn)
	if err != nil {
		return nil, err
	}
	out := []runbooks.Change{{What: server, Before: map[bool]string{true: "standby, streaming from its primary", false: "standby, its primary unreachable"}[s.Streaming], After: "primary"}}
	if s.Streaming {
		out[0].Note = "refused while it streams from a live primary (a second primary)"
	}
	if args.Fence != "" {
		out = append([]runbooks.Change{{What: "local PostgreSQL instance " + args.Fence, Before: "primary", After: "stopped cleanly (fenced)"}}, out...)
	}
	return out, nil
}
