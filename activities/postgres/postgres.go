// Package postgres implements the postgres.* actions: a standby's
// replication state read as a recovery point, its promotion (in a drill:
// of a clone, never of the production standby), SQL checks that tell
// "restored" from "restored and correct", and pg_rewind for the way back.
//
// Connection strings are secrets: a runbook names where one is (dsnFile in
// a directory of secrets.dirs, or dsnEnv in secrets.env), never the value,
// and every error an action returns is scrubbed of it.
//
// pg_basebackup, pg_rewind and pg_ctl work on a data directory, so the
// actions that need them (a drill's clone, postgres.rewind) run them on the
// worker's host, on the instances the worker's configuration declares
// (postgres.instances): lifeboat never touches a data directory a runbook
// names by path.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/activities/secrets"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Actions implements the postgres.* actions.
type Actions struct {
	Secrets *secrets.Store
	Local   Local
}

// Conn are the arguments every postgres.* step has to reach its server:
// where the connection string is, and, in a drill, the clone to use
// instead (spec.drill.with.STEP.clone).
type Conn struct {
	DSNFile string `json:"dsnFile"`
	DSNEnv  string `json:"dsnEnv"`
	// Clone names a drill clone instance (postgres.instances, drillClone:
	// true): in a drill the step works on the clone, reached with the
	// credentials of the connection string.
	Clone string `json:"clone"`
}

// dsn reads the connection string the step names.
func (a *Actions) dsn(c Conn, action string) (string, error) {
	switch {
	case c.DSNFile != "" && c.DSNEnv != "":
		return "", temporal.NewNonRetryableApplicationError(action+": give dsnFile or dsnEnv, not both", "InvalidArgument", nil)
	case c.DSNFile != "":
		return a.Secrets.FileValue(c.DSNFile, action+" dsnFile")
	case c.DSNEnv != "":
		return a.Secrets.EnvValue(c.DSNEnv, action+" dsnEnv")
	}
	return "", temporal.NewNonRetryableApplicationError(action+": name the connection string: dsnFile (a file in secrets.dirs) or dsnEnv (a variable in secrets.env)", "InvalidArgument", nil)
}

// connect opens a connection to the server the step names (the clone's
// port on this host, in a drill with a clone).
func (a *Actions) connect(ctx context.Context, c Conn, in runbooks.StepInput, action string) (*pgx.Conn, error) {
	dsn, err := a.dsn(c, action)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: the connection string does not parse (%v): write it as postgres://USER:PASSWORD@HOST:PORT/DB", action, a.Secrets.Redact(err.Error())), "InvalidArgument", nil)
	}
	if c.Clone != "" {
		inst, err := a.Local.drillClone(c.Clone, in, action)
		if err != nil {
			return nil, err
		}
		// Only the clone: pgx would otherwise fall back to the connection
		// string's own hosts (sslmode=prefer's plaintext retry, a
		// multi-host string) — production — when the clone does not answer.
		cfg.Host, cfg.Port, cfg.Fallbacks = "127.0.0.1", uint16(inst.Port), nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot connect to %s:%d (%s)", action, cfg.Host, cfg.Port, a.Secrets.Redact(err.Error()))
	}
	return conn, nil
}

// inRecovery is pg_is_in_recovery(): true on a standby.
func inRecovery(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var standby bool
	err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby)
	return standby, err
}

// querier is a connection or transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func noRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
