package workflows_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// oneApprover is a gate that demands separation of duties with one approval.
const oneApprover = `  layers:
    edge:
      - id: shift
        action: cloudflare.dnsSwitch
        approval: {from: [ic, dba], separate: true}
        with: {zone: example.com, record: case.example.com, to: dr.example.com}
      - id: other
        action: http.check
        approval: {from: [ic]}
        with: {url: "http://a"}
`

// Every forgery a lying client can send is refused, through the update and
// through the signal (the Temporal UI's path), and the run keeps waiting.
func TestForgedApprovalsAreRefusedAndTheRunKeepsWaiting(t *testing.T) {
	h := newHarness(t)
	forgeries := func() []struct {
		msg  workflows.Approve
		want string
	} {
		now := h.env.Now()
		bob := workflows.Approve{Step: "shift", By: "bob"}
		return []struct {
			msg  workflows.Approve
			want string
		}{
			{signedWith(h, bob, "carol", testWorkflowID, testRunID, now), "the key that signed is carol's, not bob's"},
			{signedWith(h, bob, "mallory", testWorkflowID, testRunID, now), "not in the worker's allowed_signers"},
			{signedWith(h, bob, "bob", testWorkflowID, "another-run", now), "does not sign this decision"},
			{signedWith(h, bob, "bob", "another-workflow", testRunID, now), "does not sign this decision"},
			{signedWith(h, workflows.Approve{Step: "other", By: "bob"}, "bob", testWorkflowID, testRunID, now), "does not sign this decision"},
			{signedWith(h, bob, "bob", testWorkflowID, testRunID, now.Add(-time.Hour)), "stale signature"},
			{withComment(signed(h, bob), "tampered"), "does not sign this decision"},
			{withSignature(bob, now, "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"), "does not parse"},
		}
	}
	h.at(time.Minute, func() {
		// No signature: recorded, never counted (the worker has allowed signers).
		h.mustUpdate(workflows.MsgApprove, unsigned{workflows.Approve{Step: "shift", By: "bob"}})
		for _, f := range forgeries() {
			h.refused(workflows.MsgApprove, retarget(f.msg), f.want)
			h.env.SignalWorkflow(workflows.MsgApprove, retarget(f.msg))
		}
	})
	h.at(2*time.Minute, func() {
		st := h.status()
		require.Len(t, st.Pending, 2)
		assert.Empty(t, st.Pending[0].Have, "no forgery counted")
		assert.Equal(t, 0, h.rec.count("shift"))
		good := signed(h, workflows.Approve{Step: "shift", By: "bob", Comment: "verified"})
		h.mustUpdate(workflows.MsgApprove, good)
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "carol"}))
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "other", By: "dan"}))
	})
	ev := h.run(book("60m", oneApprover), workflows.ModeFailover)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	s := stepOf(t, ev, "shift")
	var proven []string
	for _, a := range s.Approvals {
		if a.Proof != nil {
			proven = append(proven, a.By)
		}
	}
	assert.Equal(t, []string{"bob", "carol"}, proven, "two proven approvers: the requester is unproven")
	require.Len(t, s.Approvals, 3, "bob's unsigned approval is recorded, not counted")
	assert.Nil(t, s.Approvals[0].Proof)
	assert.Equal(t, 8, ev.RefusedSignals, "every forged signal is refused and counted")
	var refused []string
	for _, e := range ev.Events {
		if e.Kind == "signal-refused" {
			refused = append(refused, e.Text)
		}
	}
	assert.Contains(t, strings.Join(refused, "\n"), "stale signature", "the evidence lists the refusals")
	assert.NotNil(t, ev.AllowedSigners, "the keys in force are in the record")
}

// retarget sends m to step shift, whatever step it was signed for.
func retarget(m workflows.Approve) workflows.Approve { m.Step = "shift"; return m }

func withComment(m workflows.Approve, c string) workflows.Approve { m.Comment = c; return m }

func withSignature(m workflows.Approve, at time.Time, sig string) workflows.Approve {
	m.Signed = workflows.Signed{SignedAt: &at, Signature: sig}
	return m
}

// With the requester unproven (the four-field JSON names whoever it likes),
// a separate gate needs two distinct proven approvers: alice cannot start
// her own run without requestedBy and approve it alone.
func TestUnprovenRequesterNeedsTwoProvenApprovers(t *testing.T) {
	h := newHarness(t)
	h.at(time.Minute, func() {
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "carol"}))
	})
	h.at(2*time.Minute, func() {
		st := h.status()
		assert.Equal(t, 2, st.Pending[0].Need)
		assert.Equal(t, 0, h.rec.count("shift"), "one proven approver is not enough")
		h.refused(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "carol"}), "already approved")
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "dan"}))
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "other", By: "bob"}))
	})
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, h.request(book("60m", oneApprover), workflows.ModeFailover, ""))
	ev := h.result()
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Nil(t, ev.RequestProof)
	assert.Contains(t, ev.Markdown(), "| Requested by | — (unproven)")
}

// A signed start proves the requester: one other proven approver passes a
// separate gate, and the requester's own signed approval is refused.
func TestSignedStartProvesTheRequester(t *testing.T) {
	h := newHarness(t)
	h.at(time.Minute, func() {
		h.refused(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "alice"}), "separation of duties")
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob"}))
		// Unproven: recorded, not counted, so the gate still waits for a proven one.
		h.mustUpdate(workflows.MsgApprove, unsigned{workflows.Approve{Step: "other", By: "dan"}})
	})
	h.at(2*time.Minute, func() {
		assert.Equal(t, 0, h.rec.count("other"), "an unproven approval does not pass the gate")
		h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "other", By: "dan"})
	})
	req := signedStart(h, h.request(book("60m", oneApprover), workflows.ModeFailover, "alice"))
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
	ev := h.result()
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	require.NotNil(t, ev.RequestProof)
	assert.Contains(t, ev.Markdown(), "| Requested by | alice (signed)")
	other := stepOf(t, ev, "other").Approvals
	require.Len(t, other, 2)
	assert.Nil(t, other[0].Proof)
	assert.NotNil(t, other[1].Proof)
	assert.Contains(t, ev.Markdown(), "approved by dan (unproven)")
}

// A start signed by someone else, or for another runbook, is refused.
func TestForgedStartIsRefused(t *testing.T) {
	h := newHarness(t)
	req := signedStart(h, h.request(book("60m", oneApprover), workflows.ModeDrill, "alice"))
	req.Mode = workflows.ModeFailover // the signature was for a drill
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
	require.True(t, h.env.IsWorkflowCompleted())
	err := h.workflowError()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the start's signature is refused")
	assert.Equal(t, 0, h.rec.count("shift"))
}

// With signatures required, every unsigned action is refused: the start,
// and an abort, skip, retry or ack; the signed ones are accepted and the
// evidence names each actor with its proof.
func TestRequiredSignaturesRefuseEveryUnsignedAction(t *testing.T) {
	h := newHarness(t)
	h.res.SignaturesRequired = true
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, h.request(book("60m", oneApprover), workflows.ModeFailover, "alice"))
	require.Error(t, h.workflowError())
	assert.Contains(t, h.workflowError().Error(), "accepts only signed decisions")

	h = newHarness(t)
	h.res.SignaturesRequired = true
	h.at(time.Minute, func() {
		h.refused(workflows.MsgAbort, unsigned{workflows.Abort{By: "bob", Reason: "cleanup"}}, "accepts only signed decisions")
		h.refused(workflows.MsgSkip, unsigned{workflows.Skip{Step: "other", By: "bob", Reason: "n/a"}}, "accepts only signed decisions")
		h.refused(workflows.MsgApprove, unsigned{workflows.Approve{Step: "other", By: "bob"}}, "accepts only signed decisions")
		h.env.SignalWorkflow(workflows.MsgAbort, workflows.Abort{By: "bob", Reason: "cleanup"})
	})
	h.at(2*time.Minute, func() {
		assert.Equal(t, workflows.StateAwaitingApproval, h.status().State, "the unsigned abort signal changed nothing")
		h.mustUpdate(workflows.MsgSkip, signed(h, workflows.Skip{Step: "other", By: "bob", Reason: "not needed"}))
		h.mustUpdate(workflows.MsgAbort, signed(h, workflows.Abort{By: "carol", Reason: "stand down"}))
	})
	req := signedStart(h, h.request(book("60m", oneApprover), workflows.ModeFailover, "alice"))
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
	ev := h.result()
	assert.Equal(t, workflows.RunAborted, ev.Outcome)
	assert.Equal(t, "aborted by carol: stand down", ev.OutcomeReason)
	var abort, skip *record.EventRecord
	for i, e := range ev.Events {
		switch e.Kind {
		case "abort":
			abort = &ev.Events[i]
		case "skip":
			skip = &ev.Events[i]
		}
	}
	require.NotNil(t, abort)
	require.NotNil(t, abort.Proof, "the abort is proven")
	require.NotNil(t, skip)
	assert.Equal(t, "bob", skip.By)
	assert.NotNil(t, skip.Proof, "the skip is proven")
	assert.Contains(t, ev.Markdown(), "stand down — carol (signed)")
}

// A signature the run accepted cannot be used again: after a rejection
// and a retry reopen the gate, bob's first approval replayed is refused.
func TestReplayedSignatureIsRefused(t *testing.T) {
	h := newHarness(t)
	var first workflows.Reject
	h.at(time.Minute, func() {
		first = signed(h, workflows.Reject{Step: "shift", By: "bob", Reason: "not yet"})
		h.mustUpdate(workflows.MsgReject, first)
		h.mustUpdate(workflows.MsgRetry, workflows.Retry{Step: "shift", By: "bob"})
	})
	h.at(2*time.Minute, func() {
		h.refused(workflows.MsgReject, first, "replayed signature")
		h.mustUpdate(workflows.MsgAbort, workflows.Abort{By: "bob", Reason: "done"})
	})
	ev := h.run(book("60m", oneApprover), workflows.ModeFailover)
	assert.Equal(t, workflows.RunAborted, ev.Outcome)
	assert.Contains(t, ev.Markdown(), "done — bob (signed)")
}

// An auditor with nothing but OpenSSH verifies an approval in the evidence:
// the record holds the statement, the signature and the allowed signers.
func TestEvidenceApprovalVerifiesWithSSHKeygen(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ssh-keygen is missing (make test installs openssh-client)")
		}
		t.Skip("ssh-keygen is not installed")
	}
	h := newHarness(t)
	h.at(time.Minute, func() {
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob", Comment: "db verified | ok"}))
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "carol"}))
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "other", By: "dan"}))
	})
	ev := h.run(book("60m", oneApprover), workflows.ModeFailover)
	dir := t.TempDir()
	var lines []string
	for _, s := range ev.AllowedSigners {
		lines = append(lines, strings.Join(s.Principals, ",")+` namespaces="lifeboat" `+s.Key)
	}
	signers := filepath.Join(dir, "allowed_signers")
	require.NoError(t, os.WriteFile(signers, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	a := stepOf(t, ev, "shift").Approvals[0]
	require.NotNil(t, a.Proof)
	sig := filepath.Join(dir, "sig")
	require.NoError(t, os.WriteFile(sig, []byte(a.Proof.Signature), 0o600))
	verify := func(who, statement string) error {
		cmd := exec.Command(keygen, "-Y", "verify", "-f", signers, "-I", who, "-n", proof.SignatureNamespace, "-s", sig)
		cmd.Stdin = strings.NewReader(statement)
		out, err := cmd.CombinedOutput()
		t.Logf("ssh-keygen as %s: %s", who, out)
		return err
	}
	assert.NoError(t, verify("bob", a.Proof.Statement))
	assert.Error(t, verify("carol", a.Proof.Statement), "bob's signature does not prove carol")
	assert.Error(t, verify("bob", strings.Replace(a.Proof.Statement, "approve", "reject", 1)), "an edited statement fails")
}

// A drill a schedule starts carries its owner's grant instead of a fresh
// signature: accepted where signatures are required, for the schedule's
// runs only, never for a failover, and the requester stays unproven.
func TestAScheduledDrillRunsOnItsOwnersGrant(t *testing.T) {
	grant := func(h *harness, mode, prefix, signer string) workflows.Request {
		req := h.request(book("60m", twoLayers), mode, "alice")
		req.Grant = &workflows.ScheduleGrant{Workflows: prefix, SignedAt: h.env.Now().Add(-90 * 24 * time.Hour)}
		sig, err := proof.SignDecision(workflows.GrantDecision(req), testKeys[signer])
		require.NoError(t, err)
		req.Grant.Signature = sig
		return req
	}
	h := newHarness(t)
	h.res.SignaturesRequired = true
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, grant(h, workflows.ModeDrill, "default-test-workflow", "alice"))
	ev := h.result()
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome, "a 90-day-old grant still starts the schedule's drills")
	assert.Contains(t, ev.RequestClient, "schedule default-test-workflow, granted by alice")
	assert.Nil(t, ev.RequestProof, "the grant does not prove alice asked for this run")

	for name, c := range map[string]struct {
		mode, prefix, signer, want string
	}{
		"a failover":          {workflows.ModeFailover, "default-test-workflow", "alice", "accepts only signed decisions"},
		"another schedule's":  {workflows.ModeDrill, "lifeboat-other-drill-scheduled", "alice", "the schedule grant is for runs lifeboat-other-drill-scheduled-"},
		"signed by mallory":   {workflows.ModeDrill, "default-test-workflow", "mallory", "not in the worker's allowed_signers"},
		"signed by not-alice": {workflows.ModeDrill, "default-test-workflow", "bob", "the key that signed is bob's, not alice's"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.res.SignaturesRequired = true
			h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, grant(h, c.mode, c.prefix, c.signer))
			require.Error(t, h.workflowError())
			assert.Contains(t, h.workflowError().Error(), c.want)
			assert.Equal(t, 0, h.rec.count("net-a"))
		})
	}
}

// A worker that knows no keys proves nothing: a signed message counts as
// unproven (an engineer's ssh-agent signs by default), and a runbook with a
// gate demanding separation is refused at the start, not at the gate.
func TestAWorkerWithoutSignersProvesNothing(t *testing.T) {
	h := newHarness(t)
	h.res.Signers = nil
	h.at(time.Minute, func() {
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob"}))
	})
	ev := h.run(book("60m", gateWithTimeout("abort")), workflows.ModeFailover)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Nil(t, stepOf(t, ev, "shift").Approvals[0].Proof)

	h = newHarness(t)
	h.res.Signers = nil
	err := h.runErr(book("60m", oneApprover), workflows.ModeFailover)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "step shift of runbook test-book demands separation of duties, which only signed approvals can prove, and this worker has no allowed signers")
}

// Beside an unproven name the evidence puts the client identity Temporal
// recorded with the message, not what the sender said.
func TestUnprovenActionsCarryTheIdentityTemporalRecorded(t *testing.T) {
	h := newHarness(t)
	h.identities = []workflows.MessageIdentity{
		{Name: "start", By: "alice", Identity: "alice@example.com (web UI)"},
		{Name: workflows.MsgApprove, Step: "shift", By: "mallory", Identity: "42@intruder"},
		{Name: workflows.MsgApprove, Step: "other", By: "dan", Identity: "dan@example.com (web UI)"},
	}
	h.at(time.Minute, func() {
		h.env.SignalWorkflow(workflows.MsgApprove, workflows.Approve{Step: "shift", By: "mallory", Signed: workflows.Signed{Client: "I am bob"}})
		h.mustUpdate(workflows.MsgApprove, unsigned{workflows.Approve{Step: "other", By: "dan", Signed: workflows.Signed{Client: "trust me"}}})
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob"}))
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "carol"}))
	})
	h.at(2*time.Minute, func() { h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "other", By: "dan"}) }) // the counted one
	ev := h.run(book("60m", oneApprover), workflows.ModeFailover)
	assert.Equal(t, "alice@example.com (web UI)", ev.RequestClient)
	assert.Equal(t, "dan@example.com (web UI)", stepOf(t, ev, "other").Approvals[0].Client)
	var refused *record.EventRecord
	for i, e := range ev.Events {
		if e.Kind == "signal-refused" {
			refused = &ev.Events[i]
		}
	}
	require.NotNil(t, refused)
	assert.Equal(t, "42@intruder", refused.Client, "the refused forgery is tied to the client that sent it")
	assert.Contains(t, ev.Markdown(), "approved by dan (unproven, client dan@example.com (web UI))")
}

// The start's client identity comes with the resolved runbook: a run with
// no other unproven action ends without reading its history again; one
// with an unproven approval still does, and names that approval's client.
func TestTheStartsIdentityComesWithTheRunbookAndHistoryIsReadOnlyWhenNeeded(t *testing.T) {
	for _, tc := range []struct {
		name       string
		book       string
		approve    bool
		wantReads  int
		wantClient string
	}{
		{name: "nothing else unproven", book: precheckBook, wantReads: 0, wantClient: "alice@laptop (lifeboat CLI)"},
		{name: "an unproven approval", book: oneApprover, approve: true, wantReads: 1, wantClient: "alice@example.com (web UI)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.res.StartIdentity = func(context.Context, string, string) (string, error) { return "alice@laptop (lifeboat CLI)", nil }
			h.identities = []workflows.MessageIdentity{
				{Name: "start", By: "alice", Identity: "alice@example.com (web UI)"},
				{Name: workflows.MsgApprove, Step: "other", By: "dan", Identity: "dan@example.com (web UI)"},
			}
			reads := 0
			h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
				if info.ActivityType.Name == workflows.IdentitiesActivity {
					reads++
				}
			})
			if tc.approve {
				h.at(time.Minute, func() {
					h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob"}))
					h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "carol"}))
					h.mustUpdate(workflows.MsgApprove, unsigned{workflows.Approve{Step: "other", By: "dan"}})
					h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "other", By: "dan"}) // signed: the one that counts
				})
			}
			ev := h.run(book("60m", tc.book), workflows.ModeFailover)
			assert.Equal(t, workflows.RunSucceeded, ev.Outcome, ev.OutcomeReason)
			assert.Equal(t, tc.wantReads, reads, "lifeboat.identities activities")
			assert.Equal(t, tc.wantClient, ev.RequestClient)
			if tc.approve {
				assert.Equal(t, "dan@example.com (web UI)", stepOf(t, ev, "other").Approvals[0].Client)
			}
		})
	}
}
