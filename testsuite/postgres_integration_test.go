//go:build integration

package testsuite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/activities/failure"
	"github.com/lifeboat-dr/lifeboat/activities/postgres"
	"github.com/lifeboat-dr/lifeboat/activities/secrets"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/testsuite"
)

// The postgres.* actions against real PostgreSQL 15 servers: a primary
// taking writes and its streaming standby, as the region loss finds them,
// through the failover, a drill's clone, and the way back home.
func TestPostgresActionsOnARealPrimaryAndStandby(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := testsuite.StartCaseDB(ctx, os.Stderr)
	require.NoError(t, err, "the rig's PostgreSQL must start (CI=%v)", testsuite.InCI())
	t.Cleanup(db.Stop)
	secretDir := t.TempDir()
	require.NoError(t, db.WriteSecrets(secretDir))
	a := &postgres.Actions{Secrets: &secrets.Store{Dirs: []string{secretDir}}, Local: db.Instances()}
	dr, primary := filepath.Join(secretDir, "case-db-dr.dsn"), filepath.Join(secretDir, "case-db-primary.dsn")
	declared := time.Now()
	step := func(mode, id string, args map[string]any) runbooks.StepInput {
		return runbooks.StepInput{WorkflowID: "wf-" + id, RunID: "run", Mode: mode, StepID: id, Args: args, RPO: runbooks.Duration(15 * time.Minute),
			DeclaredAt: &declared, DrillRun: map[bool]string{true: "drill-run-1"}[mode == "drill"]}
	}
	t.Run("the standby's recovery point is honest on an idle primary", func(t *testing.T) {
		time.Sleep(2 * time.Second) // a few cases written and replayed
		db.PauseWriter()
		defer db.ResumeWriter()
		time.Sleep(6 * time.Second) // nobody commits for 6s: the standby is not 6s behind
		res, err := a.ReplicationLag(ctx, step("failover", "lag", map[string]any{"dsnFile": dr}))
		require.NoError(t, err, pgErr(err))
		t.Log(res.Summary)
		assert.Equal(t, true, res.Outputs["streaming"])
		require.NotNil(t, res.RecoveryPoint)
		assert.WithinDuration(t, time.Now(), *res.RecoveryPoint, 4*time.Second, "caught up with the primary's last keepalive, not its last commit")
		require.Contains(t, res.Outputs, "lastReplayedCommit")
		last, err := time.Parse(time.RFC3339Nano, res.Outputs["lastReplayedCommit"].(string))
		require.NoError(t, err)
		assert.Greater(t, time.Since(last), 5*time.Second, "the last commit is older than the recovery point")
	})

	t.Run("a standby streaming from a live primary is not promoted", func(t *testing.T) {
		_, err := a.Promote(ctx, step("failover", "promote", map[string]any{"dsnFile": dr}))
		require.Error(t, err)
		assert.Contains(t, failure.Message(err), "second primary")
		assert.Equal(t, "standby", pgRole(t, db.Standby))
	})

	t.Run("a drill promotes and verifies a clone of the standby, never the standby", func(t *testing.T) {
		_, err := a.Promote(ctx, step("drill", "promote", map[string]any{"dsnFile": dr}))
		require.Error(t, err, "a drill without a clone is refused")
		assert.Contains(t, failure.Message(err), "a drill never promotes")
		res, err := a.Promote(ctx, step("drill", "promote", map[string]any{"dsnFile": dr, "clone": "case-db-drill"}))
		require.NoError(t, err, pgErr(err))
		assert.Contains(t, res.Summary, "promoted the drill's clone case-db-drill of the standby")
		assert.Equal(t, "standby", pgRole(t, db.Standby), "production's standby still follows the primary")
		v, err := a.Verify(ctx, step("drill", "verify", map[string]any{"dsnFile": dr, "clone": "case-db-drill",
			"rowCounts": map[string]any{"cases": 100}, "newest": map[string]any{"cases": "opened_at"}}))
		require.NoError(t, err, pgErr(err))
		assert.Contains(t, v.Summary, "cases: ")
		_, err = a.RemoveClone(ctx, step("drill", "drop-clone", map[string]any{"clone": "case-db-primary"}))
		require.Error(t, err, "only a drill clone instance is removed")
		assert.DirExists(t, db.Primary.DataDir)
		other := step("drill", "drop-clone", map[string]any{"clone": "case-db-drill"})
		other.DrillRun = "another-drill"
		_, err = a.RemoveClone(ctx, other)
		require.Error(t, err, "another drill's teardown does not remove this drill's clone")
		assert.Contains(t, pgErr(err), "is drill drill-run-1's")
		_, err = a.Verify(ctx, step("drill", "verify", map[string]any{"dsnFile": dr, "queries": map[string]any{"promote it": "SELECT pg_promote()"}}))
		require.Error(t, err, "a drill runs a runbook's SQL only on its clone")
		assert.Equal(t, "standby", pgRole(t, db.Standby))
		out, err := a.RemoveClone(ctx, step("drill", "drop-clone", map[string]any{"clone": "case-db-drill"}))
		require.NoError(t, err, pgErr(err))
		assert.Contains(t, out.Summary, "removed the clone case-db-drill of drill drill-run-1")
		assert.NoDirExists(t, db.Instances().Instances["case-db-drill"].DataDir)
		// The clone is gone: a drill step pointed at it fails, and never
		// falls back to the connection string's own host (sslmode=prefer
		// makes pgx retry a failed connection without TLS, on that host).
		prefer := filepath.Join(secretDir, "case-db-dr-prefer.dsn")
		require.NoError(t, os.WriteFile(prefer, []byte(strings.Replace(db.Standby.DSN(), "sslmode=disable", "sslmode=prefer", 1)), 0o600))
		_, err = a.Verify(ctx, step("drill", "verify", map[string]any{"dsnFile": prefer, "clone": "case-db-drill", "rowCounts": map[string]any{"cases": 1}}))
		require.Error(t, err, "the drill's verify reached production instead of its clone")
	})

	t.Run("region lost: the standby's recovery point, its promotion, twice, and the data checked", func(t *testing.T) {
		db.LosePrimary()
		lost := time.Now()
		var res runbooks.StepResult
		require.Eventually(t, func() bool { // the standby's WAL receiver notices its primary is gone
			res, err = a.ReplicationLag(ctx, step("failover", "lag", map[string]any{"dsnFile": dr}))
			return err == nil && res.Outputs["streaming"] == false
		}, 15*time.Second, 200*time.Millisecond)
		t.Log(res.Summary)
		assert.Equal(t, false, res.Outputs["streaming"])
		require.NotNil(t, res.RecoveryPoint)
		assert.WithinDuration(t, lost, *res.RecoveryPoint, 3*time.Second, "the newest commit it replayed, just before the kill")
		p, err := a.Promote(ctx, step("failover", "promote", map[string]any{"dsnFile": dr}))
		require.NoError(t, err, pgErr(err))
		assert.Equal(t, false, p.Outputs["alreadyPrimary"])
		again, err := a.Promote(ctx, step("failover", "promote", map[string]any{"dsnFile": dr}))
		require.NoError(t, err, "promoting a promoted standby again is success")
		assert.Equal(t, true, again.Outputs["alreadyPrimary"])
		assert.Equal(t, "primary", pgRole(t, db.Standby))
		_, err = a.Verify(ctx, step("failover", "verify", map[string]any{"dsnFile": dr, "rowCounts": map[string]any{"cases": 100}, "newest": map[string]any{"cases": "opened_at"}}))
		require.NoError(t, err, pgErr(err))
		_, err = a.Verify(ctx, step("failover", "verify", map[string]any{"dsnFile": dr, "rowCounts": map[string]any{"cases": 1000000}, "queries": map[string]any{"no future cases": "SELECT count(*) = 0 FROM cases WHERE opened_at > now() + interval '1 hour'"}}))
		require.Error(t, err)
		assert.Contains(t, failure.Message(err), "table cases has ")
		assert.Contains(t, failure.Message(err), "fewer than 1000000")
	})

	t.Run("home: the old primary rewound to follow, then the switch back", func(t *testing.T) {
		require.NoError(t, db.BringBackPrimary(ctx))
		assert.Equal(t, "primary", pgRole(t, db.Primary), "back as a second primary until the failback rewinds it")
		w, err := a.Rewind(ctx, step("failback", "rewind", map[string]any{"instance": "case-db-primary", "dsnFile": dr}))
		require.NoError(t, err, pgErr(err))
		t.Log(w.Summary)
		assert.Equal(t, "standby", pgRole(t, db.Primary))
		again, err := a.Rewind(ctx, step("failback", "rewind", map[string]any{"instance": "case-db-primary", "dsnFile": dr}))
		require.NoError(t, err)
		assert.Contains(t, again.Summary, "nothing to rewind")

		// a case written in DR while it was the primary must come home
		c, err := db.Standby.Connect(ctx)
		require.NoError(t, err)
		_, err = c.Exec(ctx, "INSERT INTO cases (title) VALUES ('opened during the failover')")
		require.NoError(t, err)
		c.Close(ctx)
		_, err = a.Promote(ctx, step("failback", "switch", map[string]any{"dsnFile": primary, "fence": "case-db-dr"}))
		require.NoError(t, err, pgErr(err))
		_, err = a.Rewind(ctx, step("failback", "rewind-dr", map[string]any{"instance": "case-db-dr", "dsnFile": primary}))
		require.NoError(t, err, pgErr(err))
		assert.Equal(t, "primary", pgRole(t, db.Primary))
		assert.Equal(t, "standby", pgRole(t, db.Standby))
		p, err := db.Primary.Connect(ctx)
		require.NoError(t, err)
		defer p.Close(ctx)
		var n int
		require.NoError(t, p.QueryRow(ctx, "SELECT count(*) FROM cases WHERE title = 'opened during the failover'").Scan(&n))
		assert.Equal(t, 1, n, "the case written in DR is home")
	})

	t.Run("no connection string reaches a result or an error", func(t *testing.T) {
		_, err := a.Verify(ctx, step("failover", "verify", map[string]any{"dsnFile": dr, "queries": map[string]any{"bad": "SELECT nonsense"}}))
		require.Error(t, err)
		assert.NotContains(t, failure.Message(err), testsuite.PlantedPGPassword)
		assert.False(t, strings.Contains(failure.Message(err), "postgres://"))
	})
}

// pgErr is an action's error message for an assertion ("" without an error).
func pgErr(err error) string {
	if err == nil {
		return ""
	}
	return failure.Message(err)
}
