package postgres

import (
	"context"

	"github.com/lifeboat-dr/lifeboat/activities/failure"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Prechecks are the postgres.* actions' pre-flight checks: the connection
// string resolves and the server answers; for a promotion and a lag read,
// it is a standby (or, for a promotion, already the primary); for a rewind,
// its instance is declared here.
func (a *Actions) Prechecks() map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
	reach := func(action string, wantStandby bool) func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
		return func(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
			c, err := connOf(in, action)
			if err != nil {
				return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
			}
			if in.Drill() {
				c.Clone = "" // the clone does not exist before the drill makes it: check the server it is made from
			}
			name := "the PostgreSQL server answers"
			conn, err := a.connect(ctx, c, in, action)
			if err != nil {
				return []runbooks.CheckResult{runbooks.Fail(name, failure.Message(err), "check the connection string's host, port and credentials, and that the server runs")}
			}
			defer conn.Close(context.WithoutCancel(ctx))
			out := []runbooks.CheckResult{runbooks.Pass(name, "connected")}
			if wantStandby {
				standby, err := inRecovery(ctx, conn)
				switch {
				case err != nil:
					out = append(out, runbooks.Fail("the server is a standby", err.Error(), "check the server"))
				case !standby && action == "postgres.replicationLag":
					out = append(out, runbooks.Fail("the server is a standby", "it is a primary (pg_is_in_recovery() is false)", "point the step at the replica"))
				default:
					out = append(out, runbooks.Pass("the server is a standby", map[bool]string{true: "in recovery", false: "already promoted"}[standby]))
				}
			}
			return out
		}
	}
	return map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult{
		"postgres.replicationLag": reach("postgres.replicationLag", true),
		"postgres.promote":        reach("postgres.promote", true),
		"postgres.verify":         reach("postgres.verify", false),
		"postgres.rewind": func(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
			var args RewindArgs
			if err := in.DecodeArgs(&args); err != nil {
				return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
			}
			if _, err := a.Local.instance(args.Instance, "postgres.rewind"); err != nil {
				return []runbooks.CheckResult{runbooks.Fail("instance "+args.Instance+" is on this worker", failure.Message(err), "declare it under postgres.instances")}
			}
			return append([]runbooks.CheckResult{runbooks.Pass("instance "+args.Instance+" is on this worker", "declared")}, reach("postgres.rewind", false)(ctx, in)...)
		},
	}
}

// connOf decodes a step's arguments (strictly, as its action does) and
// returns how it reaches its server.
func connOf(in runbooks.StepInput, action string) (Conn, error) {
	switch action {
	case "postgres.replicationLag":
		var a LagArgs
		err := in.DecodeArgs(&a)
		return a.Conn, err
	case "postgres.promote":
		var a PromoteArgs
		err := in.DecodeArgs(&a)
		return a.Conn, err
	case "postgres.verify":
		var a VerifyArgs
		err := in.DecodeArgs(&a)
		return a.Conn, err
	default:
		var a RewindArgs
		err := in.DecodeArgs(&a)
		return a.Conn, err
	}
}
