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
// string names. Before it touches the instance it reaches the source, makes
// sure the source is not the instance itself, and checkpoints it (a
// just-promoted server writes its new timeline into its control file only
// at its next checkpoint, where pg_rewind reads it). Then it stops the
// instance, rewinds its data directory to where its timeline left the
// source's (pg_rewind, which first finishes the crash recovery of a server
// killed mid-write), writes the standby configuration (-R: the source's
// connection, password included, into the instance's own
// postgresql.auto.conf, as pg_basebackup -R does), starts it and waits
// until it streams. An instance already streaming from the source is success.
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
	source, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return runbooks.StepResult{}, fmt.Errorf("postgres.rewind: cannot reach the source %s:%s (%s); the instance was not touched", src.host, src.port, a.Secrets.Redact(err.Error()))
	}
	defer source.Close(context.WithoutCancel(ctx))
	local := func() (*pgx.Conn, error) {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, err
		}
		cfg.Host, cfg.Port, cfg.Fallbacks, cfg.ConnectTimeout = "127.0.0.1", uint16(inst.Port), nil, 5*time.Second
		return pgx.ConnectConfig(ctx, cfg)
	}
	if a.Local.running(ctx, inst) {
		if conn, err := local(); err == nil {
			same, following := follows(ctx, conn, source, src)
			conn.Close(context.WithoutCancel(ctx))
			switch {
			case same:
				return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
					"postgres.rewind refused: the source %s:%s is instance %s itself; nothing was changed — name the server it must follow", src.host, src.port, args.Instance), "InvalidArgument", nil)
			case following:
				return runbooks.StepResult{Summary: fmt.Sprintf("instance %s already streams from %s:%s: nothing to rewind", args.Instance, src.host, src.port)}, nil
			}
		}
	}
	if _, err := source.Exec(ctx, "CHECKPOINT"); err != nil {
		return runbooks.StepResult{}, fmt.Errorf("postgres.rewind: CHECKPOINT on the source (needed before pg_rewind reads its timeline): %s; the instance was not touched", a.Secrets.Redact(err.Error()))
	}
	if err := a.Local.stop(ctx, inst, "fast"); err != nil {
		return runbooks.StepResult{}, fmt.Errorf("postgres.rewind: %w", err)
	}
	started := time.Now()
	out, err := a.Local.tool(ctx, src.password, "pg_rewind", "-D", inst.DataDir, "--source-server", src.conninfo, "-R")
	if err != nil {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"postgres.rewind: pg_rewind of instance %s from %s:%s failed (%v): %s — the instance is stopped; fix the cause (wal_log_hints or data checksums must be on), or rebuild it with pg_basebackup, then retry",
			args.Instance, src.host, src.port, err, a.Secrets.Redact(out)), "RewindFailed", nil)
	}
	if err := a.Local.start(ctx, inst); err != nil {
		return runbooks.StepResult{}, fmt.Errorf("postgres.rewind: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if conn, err := local(); err == nil {
			_, following := follows(ctx, conn, source, src)
			var replayed string
			_ = conn.QueryRow(ctx, "SELECT coalesce(pg_last_wal_replay_lsn()::text, '')").Scan(&replayed)
			conn.Close(context.WithoutCancel(ctx))
			if following {
				return runbooks.StepResult{
					Summary: fmt.Sprintf("instance %s rewound (%s: %s) and streaming from %s:%s as its standby, replayed up to %s", args.Instance,
						time.Since(started).Round(10*time.Millisecond), lastLine(out), src.host, src.port, replayed),
					Outputs: map[string]any{"replayLsn": replayed},
				}, nil
			}
		}
		if time.Now().After(deadline) {
			return runbooks.StepResult{}, fmt.Errorf("postgres.rewind: instance %s was rewound and started but does not stream from %s:%s after a minute: see %s/lifeboat-server.log", args.Instance, src.host, src.port, inst.DataDir)
		}
		select {
		case <-ctx.Done():
			return runbooks.StepResult{}, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// follows says whether the local server is the source itself (same
// address as the source reports for itself) and whether it is a standby
// streaming from the source (its WAL receiver's sender is the source).
func follows(ctx context.Context, local, upstream *pgx.Conn, src source) (same, following bool) {
	var localPort, sourcePort int
	_ = local.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&localPort)
	_ = upstream.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&sourcePort)
	var localID, sourceID string
	_ = local.QueryRow(ctx, "SELECT pg_postmaster_start_time()::text || current_setting('data_directory')").Scan(&localID)
	_ = upstream.QueryRow(ctx, "SELECT pg_postmaster_start_time()::text || current_setting('data_directory')").Scan(&sourceID)
	if localID != "" && localID == sourceID && localPort == sourcePort {
		return true, false
	}
	var host string
	var port int
	err := local.QueryRow(ctx, "SELECT coalesce(sender_host, ''), coalesce(sender_port, 0) FROM pg_stat_wal_receiver WHERE status = 'streaming'").Scan(&host, &port)
	return false, err == nil && fmt.Sprint(port) == src.port && sameHost(host, src.host)
}

func sameHost(a, b string) bool {
	loop := func(h string) bool { return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1" }
	return a == b || (loop(a) && loop(b))
}

// lastLine is a tool's last line of output (pg_rewind's "Done!").
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
