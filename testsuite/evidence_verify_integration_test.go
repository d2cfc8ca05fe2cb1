//go:build integration

package testsuite_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// TestStoredEvidenceVerifiesAsAnAuditorWould: two signed runs on the dev
// server leave sealed, chained records; lifeboat evidence verify passes on
// them, ssh-keygen verifies an approval in a stored file with the record's
// own allowed signers, a one-byte edit and a deleted record fail naming the
// record and field, a record rebuilt from history verifies again, and the
// newest record deleted with every trace in the directory is named by the
// cross-check with Temporal's finished runs.
func TestStoredEvidenceVerifiesAsAnAuditorWould(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	r := setup(t)
	r.startWorker(t)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 2; i++ {
		run, err := r.starter.Start(ctx, workflows.Request{Runbook: "approve-by-update", Mode: workflows.ModeDrill, RequestedBy: "alice", Reason: "audit"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)
		_, err = r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "announce", By: "bob", Comment: "checked"})
		require.NoError(t, err)
		_, err = r.starter.Wait(ctx, run.WorkflowID)
		require.NoError(t, err)
		ids = append(ids, run.WorkflowID)
	}
	r.record(t, ids[0], "drill-signed-start-and-approval")
	bin := buildLifeboat(t)
	cli := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "LIFEBOAT_ADDRESS="+r.cfg.Temporal.Address, "LIFEBOAT_TASK_QUEUE="+r.cfg.Temporal.TaskQueue,
			"LIFEBOAT_ALLOWED_SIGNERS="+r.cfg.Signatures.AllowedSigners)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		require.NoError(t, err, string(out))
		return string(out), 0
	}
	dir := r.cfg.EvidenceDir
	out, code := cli("evidence", "verify", dir)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "evidence verifies: 2 record(s)")
	assert.Contains(t, out, "1 chain link(s)")

	// The auditor's own tool: ssh-keygen, the record's allowed signers, an approval.
	first := storedEvidence(t, dir, ids[0])
	var ev record.Evidence
	b, err := os.ReadFile(first)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &ev))
	var lines []string
	for _, s := range ev.AllowedSigners {
		lines = append(lines, strings.Join(s.Principals, ",")+" "+s.Key)
	}
	audit := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(audit, "allowed_signers"), []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	a := stepOf(t, ev, "announce").Approvals[0]
	require.NotNil(t, a.Proof, "the CLI-side starter signed bob's approval")
	require.NoError(t, os.WriteFile(filepath.Join(audit, "sig"), []byte(a.Proof.Signature), 0o600))
	keygen := exec.Command("ssh-keygen", "-Y", "verify", "-f", filepath.Join(audit, "allowed_signers"), "-I", "bob", "-n", "lifeboat", "-s", filepath.Join(audit, "sig"))
	keygen.Stdin = strings.NewReader(a.Proof.Statement)
	kout, err := keygen.CombinedOutput()
	require.NoError(t, err, string(kout))
	assert.Contains(t, string(kout), `Good "lifeboat" signature for bob`)

	// One byte edited: named, exit 1.
	edited := strings.Replace(string(b), `"outcome": "succeeded"`, `"outcome": "succeedeD"`, 1)
	require.NoError(t, os.WriteFile(first, []byte(edited), 0o644))
	out, code = cli("evidence", "verify", dir)
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, filepath.Base(first)+": outcome: edited after the worker signed the record")

	// Deleted, then rebuilt from history into its place: it verifies again.
	require.NoError(t, os.Remove(first))
	out, code = cli("evidence", "verify", dir)
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "is missing (deleted?)")
	out, code = cli("evidence", ids[0], "--from", "history", "-o", "json", "--out", first)
	require.Equal(t, 0, code, out)
	out, code = cli("evidence", "verify", dir)
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "evidence verifies: 2 record(s)")
	assert.Contains(t, out, "2 record(s) cross-checked with the finished runs in Temporal")

	// The newest record deleted with its chain position, and the head put
	// back to the position before: the directory alone cannot tell (its
	// documented limit), Temporal's finished runs can.
	newest := storedEvidence(t, dir, ids[1])
	chain := filepath.Join(dir, ".chain", "approve-by-update")
	require.NoError(t, os.Remove(newest))
	require.NoError(t, os.Remove(filepath.Join(chain, "0000000002.json")))
	older, err := os.ReadFile(filepath.Join(chain, "0000000001.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(chain, "head.json"), older, 0o644))
	out, code = cli("evidence", "verify", dir, "--temporal", "no")
	assert.Equal(t, 0, code, "a plain directory's limit: "+out)
	out, code = cli("evidence", "verify", dir)
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, filepath.Base(newest)+": run "+ids[1]+" (")
	assert.Contains(t, out, "finished and its history says its worker stored this record, but it is missing (deleted?)")
}

// TestRequiredSignaturesOnTheDevServer: with signatures required, an
// unsigned start is refused, and a schedule's drill runs on its owner's
// grant (signed when the schedule was made), its evidence naming it.
func TestRequiredSignaturesOnTheDevServer(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	r := setup(t)
	r.cfg.Signatures.Required = true
	r.startWorker(t)
	ctx := context.Background()

	plain := starter.New(r.client, r.cfg.Temporal.TaskQueue) // no keys: unsigned
	run, err := plain.Start(ctx, workflows.Request{Runbook: "failing-drill", Mode: workflows.ModeDrill, RequestedBy: "alice"})
	require.NoError(t, err)
	_, err = plain.Wait(ctx, run.WorkflowID)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "accepts only signed decisions")

	id, err := r.starter.CreateSchedule(ctx, starter.ScheduleRequest{Runbook: "failing-drill", Mode: workflows.ModeDrill, Cron: "0 3 1 * *", RequestedBy: "alice"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.starter.DeleteSchedule(ctx, id) })
	require.NoError(t, r.starter.TriggerSchedule(ctx, id))
	var info starter.ScheduleInfo
	for deadline := time.Now().Add(60 * time.Second); info.LastRun == nil; time.Sleep(200 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the schedule started no drill: %+v", info)
		info, err = r.starter.DescribeSchedule(ctx, id)
		require.NoError(t, err)
	}
	// LastRun.Result is the run's live state ("running" at first): wait
	// for the run itself to end.
	waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, _ = r.starter.Wait(waitCtx, info.LastRun.WorkflowID)
	require.NoError(t, waitCtx.Err(), "the scheduled drill did not finish within a minute")
	ev, err := r.starter.Evidence(ctx, info.LastRun.WorkflowID)
	require.NoError(t, err)
	assert.Contains(t, ev.RequestClient, "granted by alice")
	assert.Equal(t, "aborted", ev.Outcome, "it ran (and its check failed, as this runbook's does)")
}
