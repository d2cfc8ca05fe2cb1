package postgres

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// LagArgs are postgres.replicationLag's arguments.
type LagArgs struct {
	Conn
	// MaxLag fails the step when the standby's recovery point is older
	// (default: the runbook's RPO).
	MaxLag string `json:"maxLag"`
}

// replicaState is what a standby knows of its replication.
type replicaState struct {
	ReceiveLSN, ReplayLSN string
	// LastCommit is the newest transaction it replayed (nil: none since it started).
	LastCommit *time.Time
	// Streaming: its WAL receiver is connected to the primary now.
	Streaming bool
	// CaughtUpAt, when set, is the primary's clock at its last message to
	// a standby that has replayed everything the primary had written by
	// then (the primary's reported WAL end): nothing older can be missing.
	CaughtUpAt *time.Time
}

// readReplica reads a standby's replication state.
func readReplica(ctx context.Context, q querier) (replicaState, error) {
	var s replicaState
	err := q.QueryRow(ctx, `SELECT coalesce(pg_last_wal_receive_lsn()::text, ''), coalesce(pg_last_wal_replay_lsn()::text, ''), pg_last_xact_replay_timestamp()`).
		Scan(&s.ReceiveLSN, &s.ReplayLSN, &s.LastCommit)
	if err != nil {
		return s, err
	}
	var status string
	var sent *time.Time
	var caughtUp bool
	err = q.QueryRow(ctx, `SELECT status, last_msg_send_time, coalesce(latest_end_lsn <= pg_last_wal_replay_lsn(), false) FROM pg_stat_wal_receiver`).
		Scan(&status, &sent, &caughtUp)
	if err == nil {
		s.Streaming = status == "streaming"
		if caughtUp && sent != nil {
			s.CaughtUpAt = sent
		}
	} else if !noRows(err) {
		return s, err
	}
	return s, nil
}

// recoveryPoint is the honest recovery point of a standby: the primary's
// last word to it when it had replayed all of it (an idle primary's
// standby is not "hours behind" because nobody committed for hours), else
// the newest transaction it replayed (once the primary is gone, nothing
// tells whether it committed more after that one).
func (s replicaState) recoveryPoint() (time.Time, string, bool) {
	switch {
	case s.CaughtUpAt != nil && s.LastCommit != nil && s.LastCommit.After(*s.CaughtUpAt):
		return *s.LastCommit, "the replica's newest replayed commit", true
	case s.CaughtUpAt != nil:
		return *s.CaughtUpAt, "the replica, caught up with its primary's last message", true
	case s.LastCommit != nil:
		return *s.LastCommit, "the replica's newest replayed commit", true
	}
	return time.Time{}, "", false
}

// ReplicationLag reads a standby's replication state and reports its
// recovery point. When that is older than maxLag (default: the RPO) it fails
// while the standby still streams from its primary (replication is behind);
// once the primary is gone it succeeds and says the RPO is breached, so the
// evidence keeps the database's recovery point.
func (a *Actions) ReplicationLag(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args LagArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	maxLag, err := in.DurationOrRPO(args.MaxLag, "maxLag")
	if err != nil {
		return runbooks.StepResult{}, err
	}
	conn, err := a.connect(ctx, args.Conn, in, "postgres.replicationLag")
	if err != nil {
		return runbooks.StepResult{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	standby, err := inRecovery(ctx, conn)
	if err != nil {
		return runbooks.StepResult{}, fmt.Errorf("postgres.replicationLag: %w", err)
	}
	if !standby {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(
			"postgres.replicationLag: the server is not a standby (pg_is_in_recovery() is false): it is a primary, or was promoted already — point the step at the replica, before its promotion", "NotAStandby", nil)
	}
	s, err := readReplica(ctx, conn)
	if err != nil {
		return runbooks.StepResult{}, fmt.Errorf("postgres.replicationLag: %w", err)
	}
	at, how, ok := s.recoveryPoint()
	if !ok {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(
			"postgres.replicationLag: the standby has replayed no transaction since it started and is not streaming from its primary: its recovery point cannot be told — check pg_stat_wal_receiver on the standby", "RecoveryPointUnknown", nil)
	}
	lag := time.Since(at).Round(time.Second)
	out := map[string]any{"receiveLsn": s.ReceiveLSN, "replayLsn": s.ReplayLSN, "streaming": s.Streaming,
		"recoveryPoint": at.UTC().Format(time.RFC3339), "lagSeconds": int64(lag.Seconds())}
	if s.LastCommit != nil {
		out["lastReplayedCommit"] = s.LastCommit.UTC().Format(time.RFC3339Nano)
	}
	state, over := "not streaming (primary unreachable)", ""
	if s.Streaming {
		state = "streaming"
	}
	if maxLag > 0 && lag > maxLag {
		if s.Streaming {
			// The primary is alive and the replica falls behind it:
			// replication is broken, and failing over now loses data.
			return runbooks.StepResult{Outputs: out}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"postgres.replicationLag: the standby's recovery point (%s, %s) is %s old, more than %s, while it streams from its primary: replication is behind — check pg_stat_replication on the primary, or accept the loss and skip this step",
				at.UTC().Format(time.RFC3339), how, lag, runbooks.Duration(maxLag)), "ReplicaTooFarBehind", nil)
		}
		// The primary is gone: the recovery point is what it is, and the
		// evidence must say so (a failed step would leave it out).
		over = fmt.Sprintf(" — older than %s: the RPO is breached by this data", runbooks.Duration(maxLag))
	}
	return runbooks.StepResult{
		Summary: fmt.Sprintf("standby %s: received %s, replayed %s; recovery point %s (%s), %s old%s", state, s.ReceiveLSN, s.ReplayLSN,
			at.UTC().Format(time.RFC3339), how, lag, over),
		Outputs: out, RecoveryPoint: &at, RecoveryPointName: how,
	}, nil
}
