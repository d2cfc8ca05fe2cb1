package evidence_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hiddeco/sshsig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/activities/evidence"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

func newKey(t *testing.T) ssh.Signer {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	s, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return s
}

func authorized(k ssh.Signer) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.PublicKey())))
}

// sealedDir stores three final records of one runbook (each with bob's
// signed approval) and a checkpoint of a fourth run, signed by the worker.
func sealedDir(t *testing.T) (dir string, files []string, workerKeys []proof.AllowedSigner) {
	dir = t.TempDir()
	worker, bob := newKey(t), newKey(t)
	sink := evidence.NewDirSink(dir).WithKey(worker)
	signers := []proof.AllowedSigner{{Principals: []string{"bob"}, Key: authorized(bob)}}
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for i, outcome := range []string{"succeeded", "failed", "succeeded", "in-progress"} {
		wf, run := "lifeboat-rb-drill-"+string(rune('a'+i)), "run-"+string(rune('a'+i))
		d := proof.Decision{WorkflowID: wf, RunID: run, Step: "shift", Decision: "approve", Comment: "ok", At: at}
		sig, err := proof.SignDecision(d, bob)
		require.NoError(t, err)
		ev := record.Evidence{ID: "DR-" + wf, WorkflowID: wf, RunID: run, Runbook: record.RunbookRef{Name: "rb", Version: 1},
			Mode: "drill", Outcome: outcome, DeclaredAt: at, StartedAt: at, EndedAt: at.Add(time.Hour), AllowedSigners: signers,
			Steps: []record.StepRecord{{ID: "shift", Layer: "edge", Action: "http.check", State: "succeeded",
				Approvals: []record.ApprovalRecord{{By: "bob", Decision: "approved", Comment: "ok", At: at,
					Proof: &proof.Proof{Statement: string(d.Statement()), Signature: sig}}}}},
		}
		res, err := sink.Store(context.Background(), runbooks.StepInput{Args: map[string]any{"evidence": ev}})
		require.NoError(t, err)
		files = append(files, res.Outputs["json"].(string))
		at = at.Add(24 * time.Hour)
	}
	return dir, files, []proof.AllowedSigner{{Principals: []string{record.WorkerPrincipal}, Key: authorized(worker)}}
}

func findings(t *testing.T, paths []string, keys []proof.AllowedSigner) []string {
	rep, err := evidence.Verify(paths, keys)
	require.NoError(t, err)
	var out []string
	for _, f := range rep.Findings {
		out = append(out, f.String())
	}
	return out
}

func TestSealedEvidenceVerifies(t *testing.T) {
	dir, files, keys := sealedDir(t)
	rep, err := evidence.Verify([]string{dir}, keys)
	require.NoError(t, err)
	assert.Empty(t, rep.Findings)
	assert.Equal(t, 4, rep.Records)
	assert.Equal(t, 2, rep.Links, "the second and third final records link back; the checkpoint is not chained")
	assert.Equal(t, 4, rep.Approvals)

	// Another worker's key proves nothing.
	other := []proof.AllowedSigner{{Principals: []string{record.WorkerPrincipal}, Key: authorized(newKey(t))}}
	assert.Contains(t, strings.Join(findings(t, []string{files[0]}, other), "\n"), "which is not a lifeboat-worker key")
}

// One byte edited names the record and the field, and breaks the next
// record's link to it.
func TestAOneByteEditNamesTheRecordAndField(t *testing.T) {
	dir, files, keys := sealedDir(t)
	b, err := os.ReadFile(files[1])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(files[1], []byte(strings.Replace(string(b), `"outcome": "failed"`, `"outcome": "fajled"`, 1)), 0o644))
	got := strings.Join(findings(t, []string{dir}, keys), "\n")
	assert.Contains(t, got, filepath.Base(files[1])+": outcome: edited after the worker signed the record")
	assert.Contains(t, got, filepath.Base(files[2])+": seal.previousHash: the previous record of runbook rb, "+filepath.Base(files[1])+", was changed")
	assert.NotContains(t, got, filepath.Base(files[0]))
}

func TestADeletedRecordBreaksTheChain(t *testing.T) {
	dir, files, keys := sealedDir(t)
	require.NoError(t, os.Remove(files[1]))
	assert.Contains(t, strings.Join(findings(t, []string{dir}, keys), "\n"),
		filepath.Base(files[2])+": seal.previous: the previous record of runbook rb, "+filepath.Base(files[1])+", is missing (deleted?)")

	dir, files, keys = sealedDir(t)
	require.NoError(t, os.Remove(files[2])) // the newest final record: no successor notices, its position does
	assert.Contains(t, strings.Join(findings(t, []string{dir}, keys), "\n"), filepath.Base(files[2])+": the record at position 3 of runbook rb is missing (deleted?)")
}

// Deleting the newest record with its position, or rewriting the chain's
// head, is found; deleting the whole chain too. (Deleting the newest
// position and record and putting back an older head is not, in a plain
// directory: Object Lock or the cross-check with Temporal catch that.)
func TestTheNewestRecordCannotQuietlyDisappear(t *testing.T) {
	dir, files, keys := sealedDir(t)
	position := func(n int) string { return filepath.Join(dir, ".chain", "rb", fmt.Sprintf("%010d.json", n)) }
	head := filepath.Join(dir, ".chain", "rb", "head.json")
	require.NoError(t, os.Remove(files[2]))
	require.NoError(t, os.Remove(position(3)))
	assert.Contains(t, strings.Join(findings(t, []string{dir}, keys), "\n"),
		"head.json: the chain head of runbook rb names position 3, which is missing (deleted?) with its record "+filepath.Base(files[2]))

	// The head rewritten by hand to name position 2: not the signed position.
	b, err := os.ReadFile(position(2))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(head, []byte(strings.Replace(string(b), `\"seq\":2`, `\"seq\":2 `, 1)), 0o644))
	assert.Contains(t, strings.Join(findings(t, []string{dir}, keys), "\n"), "the chain head of runbook rb is not the position 2 it names")

	// The whole chain gone: the final records say which position each held.
	require.NoError(t, os.RemoveAll(filepath.Join(dir, ".chain")))
	got := strings.Join(findings(t, []string{dir}, keys), "\n")
	assert.Contains(t, got, filepath.Base(files[0])+": seal.position: not at its position in the chain of runbook rb")
	assert.Contains(t, got, filepath.Base(files[1])+": seal.position: not at its position in the chain of runbook rb")

	// A position forged with another key.
	dir, _, keys = sealedDir(t)
	forger := evidence.NewDirSink(dir).WithKey(newKey(t))
	ev := record.Evidence{ID: "DR-forged", WorkflowID: "lifeboat-rb-drill-z", RunID: "z", Runbook: record.RunbookRef{Name: "rb", Version: 1},
		Mode: "drill", Outcome: "succeeded", EndedAt: time.Now()}
	_, err = forger.Store(context.Background(), runbooks.StepInput{Args: map[string]any{"evidence": ev}})
	require.NoError(t, err)
	assert.Contains(t, strings.Join(findings(t, []string{dir}, keys), "\n"), "0000000004.json: signature: position 4 of runbook rb: signed by ")
}

// Two workers on one store, 40 stores at once: one chain, no fork, each
// record at its own position after the one before; each worker's own key
// verifies, and a verifier that trusts only one of them names the other's
// records.
func TestTwoWorkersOnOneStoreNeverForkTheChain(t *testing.T) {
	dir := t.TempDir()
	keyA, keyB := newKey(t), newKey(t)
	sinks := []*evidence.Sink{evidence.NewDirSink(dir).WithKey(keyA), evidence.NewDirSink(dir).WithKey(keyB)}
	at := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := record.Evidence{ID: fmt.Sprintf("DR-%d", i), WorkflowID: fmt.Sprintf("lifeboat-rb-drill-%02d", i), RunID: "r", Runbook: record.RunbookRef{Name: "rb", Version: 1},
				Mode: "drill", Outcome: "succeeded", StartedAt: at, EndedAt: at.Add(time.Duration(i) * time.Minute)}
			_, err := sinks[i%2].Store(context.Background(), runbooks.StepInput{Args: map[string]any{"evidence": ev}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	both := []proof.AllowedSigner{
		{Principals: []string{record.WorkerPrincipal}, Key: authorized(keyA)},
		{Principals: []string{record.WorkerPrincipal}, Key: authorized(keyB)}}
	rep, err := evidence.Verify([]string{dir}, both)
	require.NoError(t, err)
	assert.Empty(t, rep.Findings)
	assert.Equal(t, 40, rep.Records)
	assert.Equal(t, 40, rep.Positions)
	assert.Equal(t, 39, rep.Links)

	previous := map[string]string{} // a fork is two records after one
	for i := range 40 {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("lifeboat-rb-drill-%02d.r.json", i)))
		require.NoError(t, err)
		var e record.Evidence
		require.NoError(t, json.Unmarshal(b, &e))
		other, dup := previous[e.Seal.Previous]
		require.False(t, dup, "%s and run %d both follow %q: the chain forked", other, i, e.Seal.Previous)
		previous[e.Seal.Previous] = e.WorkflowID
	}

	onlyA := both[:1]
	got := strings.Join(findings(t, []string{dir}, onlyA), "\n")
	assert.Contains(t, got, "which is not a lifeboat-worker key of the allowed signers given")
	assert.Contains(t, got, "lifeboat-rb-drill-01.r.json: signature: signed by "+ssh.FingerprintSHA256(keyB.PublicKey()))
	assert.NotContains(t, got, "lifeboat-rb-drill-00.r.json: signature")
}

// A copy of a record written beside the chain (a fork, as two workers
// with one lock each made before positions) is named.
func TestARecordWrittenAroundTheChainIsFound(t *testing.T) {
	dir, files, keys := sealedDir(t)
	b, err := os.ReadFile(files[2])
	require.NoError(t, err)
	sig, err := os.ReadFile(files[2] + ".sig")
	require.NoError(t, err)
	copyOf := filepath.Join(dir, "lifeboat-rb-drill-c.run-c-copy.json")
	require.NoError(t, os.WriteFile(copyOf, b, 0o644))
	require.NoError(t, os.WriteFile(copyOf+".sig", sig, 0o644))
	assert.Contains(t, strings.Join(findings(t, []string{dir}, keys), "\n"),
		"lifeboat-rb-drill-c.run-c-copy.json: seal.position: not at its position in the chain of runbook rb")
}

func TestAnEditedApprovalOrMarkdownIsFound(t *testing.T) {
	_, files, keys := sealedDir(t)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(files[0], []byte(strings.Replace(string(b), `"by": "bob"`, `"by": "eve"`, 1)), 0o644))
	got := strings.Join(findings(t, []string{files[0]}, keys), "\n")
	assert.Contains(t, got, "steps[0] shift: edited after the worker signed the record")
	assert.Contains(t, got, "approvals[0]: eve's signature does not verify")

	md := strings.TrimSuffix(files[2], ".json") + ".md"
	b, err = os.ReadFile(md)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(md, []byte(strings.Replace(string(b), "succeeded", "SUCCEEDED", 1)), 0o644))
	assert.Contains(t, strings.Join(findings(t, []string{files[2]}, keys), "\n"), "seal.files: the Markdown file beside it ("+filepath.Base(md)+") no longer says what the signed JSON says")

	// The timeline picture is signed with the record too: edited or deleted, it is found.
	svg := strings.TrimSuffix(files[1], ".json") + ".svg"
	b, err = os.ReadFile(svg)
	require.NoError(t, err)
	require.Contains(t, string(b), "<svg", "the store wrote the timeline beside the record")
	require.NoError(t, os.WriteFile(svg, []byte(strings.Replace(string(b), "BREACHED", "", 1)+"<!-- -->"), 0o644))
	assert.Contains(t, strings.Join(findings(t, []string{files[1]}, keys), "\n"), "seal.files: the timeline picture beside it ("+filepath.Base(svg)+") no longer says what the signed JSON says")
	require.NoError(t, os.Remove(svg))
	assert.Contains(t, strings.Join(findings(t, []string{files[1]}, keys), "\n"), "seal.files: the timeline picture beside it ("+filepath.Base(svg)+") is missing (deleted?)")

	require.NoError(t, os.Remove(files[3]+".sig"))
	assert.Contains(t, strings.Join(findings(t, []string{files[3]}, keys), "\n"), "signature: no worker signature")
}

// An auditor checks the worker's signature with OpenSSH alone.
func TestTheWorkerSignatureVerifiesWithSSHKeygen(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ssh-keygen is missing (make test installs openssh-client)")
		}
		t.Skip("ssh-keygen is not installed")
	}
	_, files, keys := sealedDir(t)
	signers := filepath.Join(t.TempDir(), "allowed_signers")
	require.NoError(t, os.WriteFile(signers, []byte(record.WorkerPrincipal+` namespaces="lifeboat-evidence" `+keys[0].Key+"\n"), 0o600))
	verify := func(file string) error {
		f, err := os.Open(file)
		require.NoError(t, err)
		defer f.Close()
		cmd := exec.Command(keygen, "-Y", "verify", "-f", signers, "-I", record.WorkerPrincipal, "-n", record.EvidenceNamespace, "-s", files[0]+".sig")
		cmd.Stdin = f
		out, err := cmd.CombinedOutput()
		t.Logf("ssh-keygen: %s", out)
		return err
	}
	assert.NoError(t, verify(files[0]))
	assert.Error(t, verify(files[1]), "the signature is of that file only")
}

// A plan member's requester is proven by the plan's signed start: the
// statement names the plan's run, and verifies only for the plan's members.
func TestAPlanMembersRequestProofIsThePlansStart(t *testing.T) {
	worker, alice := newKey(t), newKey(t)
	signers := []proof.AllowedSigner{{Principals: []string{"alice"}, Key: authorized(alice)}}
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	d := proof.Decision{WorkflowID: "plan-run", Decision: "start drill region-loss", At: at}
	sig, err := proof.SignDecision(d, alice)
	require.NoError(t, err)
	store := func(dir, wf string) string {
		ev := record.Evidence{ID: "DR-" + wf, WorkflowID: wf, RunID: "r", Runbook: record.RunbookRef{Name: "member", Version: 1},
			Mode: "drill", Outcome: "succeeded", DeclaredAt: at, StartedAt: at, EndedAt: at.Add(time.Minute), AllowedSigners: signers,
			RequestedBy: "alice", RequestProof: &proof.Proof{Statement: string(d.Statement()), Signature: sig}, PlanRun: "plan-run"}
		res, err := evidence.NewDirSink(dir).WithKey(worker).Store(context.Background(), runbooks.StepInput{Args: map[string]any{"evidence": ev}})
		require.NoError(t, err)
		return res.Outputs["json"].(string)
	}
	keys := []proof.AllowedSigner{{Principals: []string{record.WorkerPrincipal}, Key: authorized(worker)}}
	assert.Empty(t, findings(t, []string{store(t.TempDir(), "plan-run.member")}, keys))
	got := findings(t, []string{store(t.TempDir(), "someone-elses-run")}, keys)
	require.Len(t, got, 1)
	assert.Contains(t, got[0], "requestProof: alice's signed statement is about another run or step")
}

// A Temporal reset of a finished run keeps its first run id, so the new
// ending has the same evidence id: it is stored beside the first ending's
// record, chained after it, and never overwrites it; a retried store of the
// same ending rewrites its own file.
func TestAnotherEndingOfTheSameRunNeverOverwritesTheFirst(t *testing.T) {
	dir, worker := t.TempDir(), newKey(t)
	sink := evidence.NewDirSink(dir).WithKey(worker)
	at := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	store := func(outcome string, ended time.Time) string {
		ev := record.Evidence{ID: "DR-x", WorkflowID: "lifeboat-rb-failover-abc123", RunID: "first-run", Runbook: record.RunbookRef{Name: "rb", Version: 1},
			Mode: "failover", Outcome: outcome, DeclaredAt: at, StartedAt: at, EndedAt: ended}
		res, err := sink.Store(context.Background(), runbooks.StepInput{Args: map[string]any{"evidence": ev}})
		require.NoError(t, err)
		return res.Outputs["json"].(string)
	}
	first := store("failed", at.Add(time.Hour))
	firstBytes, err := os.ReadFile(first)
	require.NoError(t, err)
	assert.Equal(t, first, store("failed", at.Add(time.Hour)), "a retried store of the same ending")
	second := store("succeeded", at.Add(2*time.Hour))
	assert.NotEqual(t, first, second)
	assert.Equal(t, filepath.Join(dir, "lifeboat-rb-failover-abc123.first-run-2.json"), second)
	after, err := os.ReadFile(first)
	require.NoError(t, err)
	assert.Equal(t, string(firstBytes), string(after), "the first ending's record is untouched")
	runs, err := sink.Runs("lifeboat-rb-failover-abc123")
	require.NoError(t, err)
	assert.Equal(t, []string{first, second}, runs, "both endings, the latest last")

	rep, err := evidence.Verify([]string{dir}, []proof.AllowedSigner{{Principals: []string{record.WorkerPrincipal}, Key: authorized(worker)}})
	require.NoError(t, err)
	assert.Empty(t, rep.Findings)
	assert.Equal(t, 1, rep.Links, "the second ending chains after the first")
}

// A record sealed before seals listed the files beside it had an unsigned
// Markdown file, rendered by the lifeboat of then: it verifies while its
// Markdown is there, whatever this build would render, and a missing one is
// found.
func TestARecordSealedBeforeFileDigestsStillVerifies(t *testing.T) {
	dir := t.TempDir()
	worker := newKey(t)
	sink := evidence.NewDirSink(dir).WithKey(worker)
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	// A checkpoint: no chain position vouches for its bytes, so it can be
	// sealed again as an older worker would have.
	ev := record.Evidence{ID: "DR-old", WorkflowID: "lifeboat-old-drill-a", RunID: "run-a", Runbook: record.RunbookRef{Name: "old", Version: 1},
		Mode: "drill", Outcome: "in-progress", DeclaredAt: at, StartedAt: at}
	res, err := sink.Store(context.Background(), runbooks.StepInput{Args: map[string]any{"evidence": ev}})
	require.NoError(t, err)
	file := res.Outputs["json"].(string)
	// Rewrite it as an older worker sealed it: no file digests, signed again.
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var rec map[string]any
	require.NoError(t, json.Unmarshal(b, &rec))
	delete(rec["seal"].(map[string]any), "files")
	old, err := json.MarshalIndent(rec, "", "  ")
	require.NoError(t, err)
	old = append(old, '\n')
	sig, err := sshsig.SignWithRand(bytes.NewReader(old), rand.Reader, worker, sshsig.HashSHA512, record.EvidenceNamespace)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, old, 0o644))
	require.NoError(t, os.WriteFile(file+".sig", sshsig.Armor(sig), 0o644))
	md := strings.TrimSuffix(file, ".json") + ".md"
	require.NoError(t, os.WriteFile(md, []byte("# Restore evidence DR-old\n\n(as an older lifeboat rendered it)\n"), 0o644))
	require.NoError(t, os.Remove(strings.TrimSuffix(file, ".json")+".svg"))
	keys := []proof.AllowedSigner{{Principals: []string{record.WorkerPrincipal}, Key: authorized(worker)}}
	assert.Empty(t, findings(t, []string{dir}, keys), "an older record verifies: its Markdown was never signed, and it had no picture")
	require.NoError(t, os.Remove(md))
	assert.Contains(t, strings.Join(findings(t, []string{dir}, keys), "\n"), "the Markdown file beside it ("+filepath.Base(md)+") is missing")
}
