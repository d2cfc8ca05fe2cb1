package postgres

import (
	"context"
	"fmt"
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
// would be a second primary taking writes. In a drill it never promotes the
// standby it names: it clones it into the drill's clone instance
// (pg_basebackup), starts the clone and promotes that.
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
	if args.Fence != "" {
		if err := a.fence(ctx, args.Fence); err != nil {
			return runbooks.StepResult{}, err
		}
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
	if err := a.noLivePrimary(ctx, conn, args.Fence != ""); err != nil {
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
// connected to its primary: that primary is alive and would keep taking
// writes beside the promoted one. After a fence the receiver may take a
// moment to notice its primary is gone.
func (a *Actions) noLivePrimary(ctx context.Context, conn *pgx.Conn, fenced bool) error {
	deadline := time.Now().Add(time.Second)
	if fenced {
		deadline = time.Now().Add(30 * time.Second)
	}
	for {
		s, err := readReplica(ctx, conn)
		if err != nil {
			return fmt.Errorf("postgres.promote: %w", err)
		}
		if !s.Streaming {
			return nil
		}
		if time.Now().After(deadline) {
			return temporal.NewNonRetryableApplicationError(
				"postgres.promote refused: the standby is streaming from a live primary (pg_stat_wal_receiver status streaming): promoting it would make a second primary taking writes; fence the primary first (stop it, or name it in with.fence for a switchover), then retry — nothing was changed", "SecondPrimary", nil)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fence stops the current primary, a local instance, cleanly.
func (a *Actions) fence(ctx context.Context, name string) error {
	inst, err := a.Local.instance(name, "postgres.promote fence")
	if err != nil {
		return err
	}
	return a.Local.stop(ctx, inst, "fast")
}

func currentLSN(ctx context.Context, conn *pgx.Conn) string {
	var lsn string
	_ = conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn)
	return lsn
}
