package postgres

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// PromoteArgs are postgres.promote's arguments.
type PromoteArgs struct {
	Conn
	// Fence names a local instance (postgres.instances) that is the
	// current primary, to stop cleanly before the promotion — a switchover,
	// as in a failback: its clean shutdown sends its last WAL to the standby.
	Fence string `json:"fence"`
}

// Promote makes a standby the primary. It is idempotent: a server that is
// already a primary (promoted by an earlier attempt) is success. It refuses
// a standby whose WAL receiver still streams from a live primary: that
// would be a second primary taking writes. With fence it first checks the
// standby, then stops the current primary cleanly and promotes only once
// the standby received the primary's last WAL. In a drill it never
// promotes the standby it names: it clones it into the drill's clone
// instance (pg_basebackup), starts the clone and promotes that.
func (a *Actions) Promote(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args PromoteArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	what := "the standby"
	if in.Drill() {
		if args.Clone == "" || args.Fence != "" {
			return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"postgres.promote refused in a drill: a drill never promotes (or fences) production's servers; give the step a clone instance to promote instead (spec.drill.with.%s.clone); nothing was changed", in.StepID), "DrillScope", nil)
		}
		if err := a.cloneStandby(ctx, in, args.Conn); err != nil {
			return runbooks.StepResult{}, err
		}
		what = "the drill's clone " + args.Clone + " of the standby"
	}
	conn, err := a.connect(ctx, args.Conn, in, "postgres.promote")
	if err != nil {
		return runbooks.StepResult{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	standby, err := inRecovery(ctx, conn)
	if err != nil {
		return runbooks.StepResult{}, fmt.Errorf("postgres.promote: %w", err)
	}
	if !standby {
		lsn := currentLSN(ctx, conn)
		return runbooks.StepResult{Summary: what + " is already a primary (promoted before): nothing to do",
			Outputs: map[string]any{"alreadyPrimary": true, "lsn": lsn}}, nil
	}
	if args.Fence != "" {
		if err := a.fence(ctx, conn, args.Fence); err != nil {
			return runbooks.StepResult{}, err
		}
	}
	if err := noLivePrimary(ctx, conn, args.Fence != ""); err != nil {
		return runbooks.StepResult{}, err
	}
	started := time.Now()
	var promoted bool
	if err := conn.QueryRow(ctx, "SELECT pg_promote(true, 60)").Scan(&promoted); err != nil {
		return runbooks.StepResult{}, fmt.Errorf("postgres.promote: pg_promote: %w", err)
	}
	if still, err := inRecovery(ctx, conn); err != nil || still || !promoted {
		return runbooks.StepResult{}, fmt.Errorf("postgres.promote: pg_promote did not end recovery within 60s (still in recovery: %v, %v): see the server's log", still, err)
	}
	return runbooks.StepResult{
		Summary: fmt.Sprintf("promoted %s to primary in %s", what, time.Since(started).Round(10*time.Millisecond)),
		Outputs: map[string]any{"alreadyPrimary": false, "lsn": currentLSN(ctx, conn)},
	}, nil
}

// noLivePrimary refuses a promotion while the standby's WAL receiver is
// connected to a primary that still talks to it. It samples for a while
// (after a fence, until the receiver notices): a receiver between
// reconnects must not pass for a dead primary.
func noLivePrimary(ctx context.Context, conn *pgx.Conn, fenced bool) error {
	window := 3 * time.Second
	if fenced {
		window = 30 * time.Second
	}
	deadline := time.Now().Add(window)
	quiet := 0
	for {
		var streaming bool
		var since *float64
		err := conn.QueryRow(ctx, `SELECT status = 'streaming', extract(epoch FROM now() - last_msg_receipt_time)::float8 FROM pg_stat_wal_receiver`).Scan(&streaming, &since)
		if err != nil && !noRows(err) {
			return fmt.Errorf("postgres.promote: %w", err)
		}
		if !streaming {
			quiet++
		} else {
			quiet = 0
		}
		if quiet >= 3 { // three readings in a row: no primary talks to it
			return nil
		}
		if time.Now().After(deadline) {
			last := "unknown"
			if since != nil {
				last = time.Duration(*since*float64(time.Second)).Round(time.Second).String() + " ago"
			}
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"postgres.promote refused: the standby is streaming from a primary (pg_stat_wal_receiver status streaming, last message %s): promoting it would make a second primary taking writes — fence the primary first (stop it, or name it in with.fence for a switchover); if the primary is gone without closing its connections, the standby notices after wal_receiver_timeout: retry then. Nothing was changed",
				last), "SecondPrimary", nil)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var checkpointLine = regexp.MustCompile(`(?m)^Latest checkpoint location:\s+(\S+)$`)

// fence stops the current primary, a local instance, cleanly, and waits
// until the standby has received its last WAL (the shutdown checkpoint
// pg_controldata shows): promoting before that would lose its last writes.
func (a *Actions) fence(ctx context.Context, standby *pgx.Conn, name string) error {
	inst, err := a.Local.instance(name, "postgres.promote fence")
	if err != nil {
		return err
	}
	if err := a.Local.stop(ctx, inst, "fast"); err != nil {
		return err
	}
	out, err := a.Local.tool(ctx, "", "pg_controldata", "-D", inst.DataDir)
	m := checkpointLine.FindStringSubmatch(out)
	if err != nil || m == nil {
		return fmt.Errorf("postgres.promote: pg_controldata of the fenced instance %s: %v: %s", name, err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var received bool
		if err := standby.QueryRow(ctx, "SELECT coalesce(pg_last_wal_receive_lsn() >= $1::pg_lsn, false)", m[1]).Scan(&received); err != nil {
			return fmt.Errorf("postgres.promote: %w", err)
		}
		if received {
			return nil
		}
		if time.Now().After(deadline) {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"postgres.promote: the standby did not receive the fenced primary %s's last WAL (its shutdown checkpoint %s) within 30s: promoting it would lose that primary's last writes; nothing was promoted — start %s again (it is stopped), check replication, then retry",
				name, m[1], name), "FenceIncomplete", nil)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func currentLSN(ctx context.Context, conn *pgx.Conn) string {
	var lsn string
	_ = conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn)
	return lsn
}
