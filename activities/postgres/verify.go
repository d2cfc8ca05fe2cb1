package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// VerifyArgs are postgres.verify's arguments: SQL checks of the data.
type VerifyArgs struct {
	Conn
	// RowCounts are tables and the fewest rows each must hold.
	RowCounts map[string]int `json:"rowCounts"`
	// Newest are tables and a timestamp column: the newest row must be
	// within Within of the declared disaster — the data is recent, not an
	// old copy that happens to have rows.
	Newest map[string]string `json:"newest"`
	// Within bounds Newest (default: the runbook's RPO).
	Within string `json:"within"`
	// Queries are named SQL queries that must each return true.
	Queries map[string]string `json:"queries"`
}

// Verify runs the checks in one read-only transaction and fails naming
// every check that failed.
func (a *Actions) Verify(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args VerifyArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	within, err := in.DurationOrRPO(args.Within, "within")
	if err != nil {
		return runbooks.StepResult{}, err
	}
	declared := time.Now()
	if in.DeclaredAt != nil {
		declared = *in.DeclaredAt
	}
	if in.Drill() && len(args.Queries) > 0 && args.Clone == "" {
		// A read-only transaction does not stop SELECT pg_promote() or
		// pg_terminate_backend(): a drill runs a runbook's own SQL only on its clone.
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"postgres.verify refused in a drill: its queries would run on production's server; give the step the drill's clone (spec.drill.with.%s.clone); nothing was run", in.StepID), "DrillScope", nil)
	}
	conn, err := a.connect(ctx, args.Conn, in, "postgres.verify")
	if err != nil {
		return runbooks.StepResult{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return runbooks.StepResult{}, fmt.Errorf("postgres.verify: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var failed, passed []string
	outputs := map[string]any{}
	for _, table := range slices.Sorted(maps.Keys(args.RowCounts)) {
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier(strings.Split(table, ".")).Sanitize()).Scan(&n); err != nil {
			return runbooks.StepResult{}, checkError("rowCounts."+table, err)
		}
		outputs["rows."+table] = n
		if want := args.RowCounts[table]; n < int64(want) {
			failed = append(failed, fmt.Sprintf("table %s has %d row(s), fewer than %d", table, n, want))
		} else {
			passed = append(passed, fmt.Sprintf("%s: %d rows", table, n))
		}
	}
	for _, table := range slices.Sorted(maps.Keys(args.Newest)) {
		col := args.Newest[table]
		var newest *time.Time
		q := fmt.Sprintf("SELECT max(%s) FROM %s", pgx.Identifier{col}.Sanitize(), pgx.Identifier(strings.Split(table, ".")).Sanitize())
		if err := tx.QueryRow(ctx, q).Scan(&newest); err != nil {
			return runbooks.StepResult{}, checkError("newest."+table, err)
		}
		switch {
		case newest == nil:
			failed = append(failed, fmt.Sprintf("table %s has no row: no newest %s", table, col))
		case declared.Sub(*newest) > within:
			failed = append(failed, fmt.Sprintf("the newest %s.%s is %s, %s before the disaster was declared: older than %s, so recent data is missing",
				table, col, newest.UTC().Format(time.RFC3339), declared.Sub(*newest).Round(time.Second), runbooks.Duration(within)))
		default:
			outputs["newest."+table] = newest.UTC().Format(time.RFC3339Nano)
			when := fmt.Sprintf("%s before", declared.Sub(*newest).Round(time.Second))
			if newest.After(declared) {
				when = fmt.Sprintf("%s after", newest.Sub(declared).Round(time.Second))
			}
			passed = append(passed, fmt.Sprintf("newest %s.%s %s the declaration", table, col, when))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(args.Queries)) {
		var ok bool
		if err := tx.QueryRow(ctx, args.Queries[name]).Scan(&ok); err != nil {
			return runbooks.StepResult{}, checkError("queries."+name, err)
		}
		if !ok {
			failed = append(failed, "query "+name+" returned false")
		} else {
			passed = append(passed, name)
		}
	}
	if len(failed) > 0 {
		return runbooks.StepResult{Outputs: outputs}, temporal.NewNonRetryableApplicationError(
			"postgres.verify: the data is restored but not correct: "+strings.Join(failed, "; ")+" — investigate before sending traffic (skip the step to accept it)", "DataCheckFailed", nil)
	}
	return runbooks.StepResult{Summary: "data checks passed: " + strings.Join(passed, "; "), Outputs: outputs}, nil
}

func checkError(check string, err error) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("postgres.verify: check %s could not run: %v — fix the table, column or query in the runbook", check, err), "InvalidArgument", nil)
}
