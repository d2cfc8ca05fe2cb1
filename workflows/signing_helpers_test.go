package workflows_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"reflect"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// The test environment's ids: what a signature must name.
const (
	testWorkflowID = "default-test-workflow-id"
	testRunID      = "default-test-run-id"
)

// people's SSH keys; mallory's is not in the allowed signers.
var testKeys = func() map[string]ssh.Signer {
	keys := map[string]ssh.Signer{}
	for _, name := range []string{"alice", "bob", "carol", "dan", "mallory"} {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		s, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			panic(err)
		}
		keys[name] = s
	}
	return keys
}()

// testSigners is the allowed_signers in force: everyone but mallory.
func testSigners() ([]proof.AllowedSigner, error) {
	var out []proof.AllowedSigner
	for _, name := range []string{"alice", "bob", "carol", "dan"} {
		out = append(out, proof.AllowedSigner{Principals: []string{name},
			Key: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(testKeys[name].PublicKey())))})
	}
	return out, nil
}

// signed signs m with the key of its own sender, now, for this run.
func signed[T workflows.Signable](h *harness, m T) T {
	return signedWith(h, m, reflect.ValueOf(m).FieldByName("By").String(), testWorkflowID, testRunID, h.env.Now())
}

// signedWith signs m with key's owner's key for the run wf/run at time at:
// what an attacker varies.
func signedWith[T workflows.Signable](h *harness, m T, key, wf, run string, at time.Time) T {
	h.t.Helper()
	sig, err := proof.SignDecision(workflows.MessageDecision(wf, run, m, at), testKeys[key])
	if err != nil {
		h.t.Fatal(err)
	}
	reflect.ValueOf(&m).Elem().FieldByName("Signed").Set(reflect.ValueOf(workflows.Signed{SignedAt: &at, Signature: sig}))
	return m
}

// signedStart is req signed by its requester.
func signedStart(h *harness, req workflows.Request) workflows.Request {
	h.t.Helper()
	at := h.env.Now()
	req.SignedAt = &at
	sig, err := proof.SignDecision(workflows.StartDecision(testWorkflowID, req), testKeys[req.RequestedBy])
	if err != nil {
		h.t.Fatal(err)
	}
	req.Signature = sig
	return req
}
