package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// RewindArgs are postgres.rewind's arguments: the local instance that
// must follow (the old primary, for a failback) and the connection string
// of the server it follows (the new primary).
type RewindArgs struct {
	Conn
	Instance string `json:"instance"`
}

// Rewind makes a local instance a standby of the server the connection
// string names: it stops the instance, rewinds its data directory to the
// point where its timeline left the source's (pg_rewind, which first
// finishes the crash recovery of a server killed mid-write), writes the
// standby configuration (-R), starts it and waits until it streams. An
// instance already streaming from the source is success.
func (a *Actions) Rewind(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args RewindArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	inst, err := a.Local.instance(args.Instance, "postgres.rewind")
	if in.Drill() { // a drill rewinds only its own clone
		inst, err = a.Local.drillClone(args.Instance, in, "postgres.rewind")
	}
	if err != nil {
		return runbooks.StepResult{}, err
	}
	dsn, err := a.dsn(args.Conn, "postgres.rewind")
	if err != nil {
		return runbooks.StepResult{}, err
	}
	src, err := sourceOf(dsn)
	if err != nil {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError("postgres.rewind: "+err.Error(), "InvalidArgument", nil)
	}
	local := func() (*pgx.Conn, error) {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, err
		}
		cfg.Host, cfg.Port, cfg.ConnectTimeout = "127.0.0.1", uint16(inst.Port), 5*time.Second
		return pgx.ConnectConfig(ctx, cfg)
	}
	if a.Local.running(ctx, inst) {
		if conn, err := local(); err == nil {
			s, rerr := readReplica(ctx, conn)
			standby, _ := inRecovery(ctx, conn)
			conn.Close(context.WithoutCancel(ctx))
			if rerr == nil && standby && s.Streaming {
				return runbooks.StepResult{Summary: fmt.Sprintf("instance %s already streams from %s: nothing to rewind", args.Instance, src.conninfo)}, nil
			}
		}
	}
	if err := a.Local.stop(ctx, inst, "fast"); err != nil {
		return runbooks.StepResult{}, fmt.Errorf("postgres.rewind: %w", err)
	}
	// A just-promoted source writes its new timeline into its control file
	// only at its next checkpoint; pg_rewind reads it there, and would find
	// "the same timeline, no rewind required" before it.
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		_, cerr := conn.Exec(ctx, "CHECKPOINT")
		conn.Close(context.WithoutCancel(ctx))
		if cerr != nil {
			return runbooks.StepResult{}, fmt.Errorf("postgres.rewind: CHECKPOINT on the source (needed before pg_rewind reads its timeline): %s", a.Secrets.Redact(cerr.Error()))
		}
	} else {
		return runbooks.StepResult{}, fmt.Errorf("postgres.rewind: cannot reach the source %s: %s", src.conninfo, a.Secrets.Redact(err.Error()))
	}
	started := time.Now()
	out, err := a.Local.tool(ctx, src.password, "pg_rewind", "-D", inst.DataDir, "--source-server", src.conninfo, "-R")
	if err != nil {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"postgres.rewind: pg_rewind of instance %s from %s failed (%v): %s — the instance is stopped; fix the cause (wal_log_hints or data checksums must be on), or rebuild it with pg_basebackup, then retry",
			args.Instance, src.conninfo, err, a.Secrets.Redact(out)), "RewindFailed", nil)
	}
	if err := a.Local.start(ctx, inst); err != nil {
		return runbooks.StepResult{}, fmt.Errorf("postgres.rewind: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if conn, err := local(); err == nil {
			s, rerr := readReplica(ctx, conn)
			conn.Close(context.WithoutCancel(ctx))
			if rerr == nil && s.Streaming {
				return runbooks.StepResult{
					Summary: fmt.Sprintf("instance %s rewound (%s: %s) and streaming from %s as its standby, replayed up to %s", args.Instance,
						time.Since(started).Round(10*time.Millisecond), lastLine(out), src.conninfo, s.ReplayLSN),
					Outputs: map[string]any{"replayLsn": s.ReplayLSN},
				}, nil
			}
		}
		if time.Now().After(deadline) {
			return runbooks.StepResult{}, fmt.Errorf("postgres.rewind: instance %s was rewound and started but does not stream from %s after a minute: see %s/lifeboat-server.log", args.Instance, src.conninfo, inst.DataDir)
		}
		select {
		case <-ctx.Done():
			return runbooks.StepResult{}, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// lastLine is a tool's last line of output (pg_rewind's "Done!").
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
