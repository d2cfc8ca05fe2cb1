package proof_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
)

// sshKey makes an ed25519 key with ssh-keygen, as an engineer does for git
// commit signing; it returns the private key file and its public key line.
func sshKey(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	key := filepath.Join(dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key).CombinedOutput()
	require.NoError(t, err, string(out))
	pub, err := os.ReadFile(key + ".pub")
	require.NoError(t, err)
	return key, strings.TrimSpace(string(pub))
}

func TestSignedDecisionsAreProvenWithOpenSSHTools(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Fatalf("the signature test checks interoperability with OpenSSH's ssh-keygen: install openssh-client (%v)", err)
	}
	dir := t.TempDir()
	bobKey, bobPub := sshKey(t, dir, "bob")
	_, alicePub := sshKey(t, dir, "alice")
	malloryKey, _ := sshKey(t, dir, "mallory")
	allowed := "# who may decide\nbob " + bobPub + "\nalice,alice@example.com namespaces=\"git,lifeboat\" " + alicePub + "\n"
	signers, err := proof.ParseAllowedSigners(allowed)
	require.NoError(t, err)
	require.Len(t, signers, 2)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "allowed_signers"), []byte(allowed), 0o644))

	d := proof.Decision{WorkflowID: "lifeboat-case-failover-abc123", RunID: "run-1", Step: "shift-traffic",
		Decision: "approve", Comment: "data verified\nstep: other", At: time.Date(2026, 11, 21, 3, 4, 5, 0, time.UTC)}

	// Signed by OpenSSH (ssh-keygen -Y sign), proven by lifeboat.
	msg := filepath.Join(dir, "statement")
	require.NoError(t, os.WriteFile(msg, d.Statement(), 0o644))
	out, err := exec.Command("ssh-keygen", "-Y", "sign", "-f", bobKey, "-n", "lifeboat", msg).CombinedOutput()
	require.NoError(t, err, string(out))
	armored, err := os.ReadFile(msg + ".sig")
	require.NoError(t, err)
	require.NoError(t, proof.VerifyDecision(d, "bob", string(armored), signers))

	// Signed by lifeboat, proven by OpenSSH with no lifeboat installed.
	raw, err := os.ReadFile(bobKey)
	require.NoError(t, err)
	signer, err := ssh.ParsePrivateKey(raw)
	require.NoError(t, err)
	ours, err := proof.SignDecision(d, signer)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ours.sig"), []byte(ours), 0o644))
	check := exec.Command("ssh-keygen", "-Y", "verify", "-f", filepath.Join(dir, "allowed_signers"), "-I", "bob", "-n", "lifeboat", "-s", filepath.Join(dir, "ours.sig"))
	check.Stdin = strings.NewReader(string(d.Statement()))
	out, err = check.CombinedOutput()
	require.NoError(t, err, "ssh-keygen -Y verify: %s", out)
	assert.Contains(t, string(out), `Good "lifeboat" signature for bob`)

	// An attacker's messages are refused, each with its reason.
	other := d
	other.Step = "scale-up"
	replayed := d
	replayed.RunID = "run-2"
	stale := d
	stale.At = d.At.Add(time.Hour)
	forgedMsg := filepath.Join(dir, "forged")
	require.NoError(t, os.WriteFile(forgedMsg, d.Statement(), 0o644))
	forged, err := exec.Command("ssh-keygen", "-Y", "sign", "-f", malloryKey, "-n", "lifeboat", forgedMsg).CombinedOutput()
	require.NoError(t, err, string(forged))
	forgedSig, err := os.ReadFile(forgedMsg + ".sig")
	require.NoError(t, err)
	for name, c := range map[string]struct {
		d         proof.Decision
		by, sig   string
		wantInErr string
	}{
		"unsigned":                {d, "bob", "", "unsigned"},
		"garbage":                 {d, "bob", "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n", "does not parse"},
		"another person's name":   {d, "alice", ours, "the key that signed is bob's, not alice's"},
		"another step":            {other, "bob", ours, "does not sign this decision"},
		"replayed on another run": {replayed, "bob", ours, "does not sign this decision"},
		"another time":            {stale, "bob", ours, "does not sign this decision"},
		"a key nobody allowed":    {d, "bob", string(forgedSig), "not in the worker's allowed_signers"},
	} {
		err := proof.VerifyDecision(c.d, c.by, c.sig, signers)
		if assert.ErrorIs(t, err, proof.ErrUnproven, name) {
			assert.Contains(t, err.Error(), c.wantInErr, name)
		}
	}
}

func TestAllowedSignersOutsideTheLifeboatNamespaceAreLeftOut(t *testing.T) {
	signers, err := proof.ParseAllowedSigners(`carol namespaces="git" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEa6Ctv5nQ8oP3lbvV5Nw2p9dvHz3u6bDbo3Pp4S8OvF carol`)
	require.NoError(t, err)
	assert.Empty(t, signers, "a key allowed for git signing only proves nothing here")
	_, err = proof.ParseAllowedSigners("dan ssh-ed25519 not-base64")
	assert.ErrorContains(t, err, "allowed_signers line 1")
}
