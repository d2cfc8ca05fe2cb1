package proof

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// SignatureNamespace is the SSH signature namespace of lifeboat decisions:
// `ssh-keygen -Y verify -n lifeboat` checks them.
const SignatureNamespace = "lifeboat"

// Decision is what an operator signs: one decision about one step of one
// run, at one time. Its Statement is the exact signed text, so a signature
// cannot be replayed on another run, step or decision.
type Decision struct {
	WorkflowID string    `json:"workflowId"`
	RunID      string    `json:"runId"`
	Step       string    `json:"step,omitempty"`
	Decision   string    `json:"decision"` // approve, reject, ack, skip, retry, abort, start
	Comment    string    `json:"comment,omitempty"`
	At         time.Time `json:"at"`
	// Terms is, for a start, the canonical encoding of everything in the
	// request that changes what the run does (workflows.StartTerms). It is
	// a line of the statement only when set, so older statements are
	// unchanged.
	Terms string `json:"terms,omitempty"`
}

// Statement is the canonical text of the decision: fixed field order, one
// field a line, the comment JSON-quoted so no text can forge a line.
func (d Decision) Statement() []byte {
	comment, _ := json.Marshal(d.Comment)
	out := fmt.Appendf(nil, "lifeboat decision v1\nworkflow: %s\nrun: %s\nstep: %s\ndecision: %s\ncomment: %s\nat: %s\n",
		d.WorkflowID, d.RunID, d.Step, d.Decision, comment, d.At.UTC().Format(time.RFC3339))
	if d.Terms != "" {
		terms, _ := json.Marshal(d.Terms)
		out = fmt.Appendf(out, "terms: %s\n", terms)
	}
	return out
}

// AllowedSigner is one line of an OpenSSH allowed_signers file: the
// principals a public key proves (the format git commit signing uses).
type AllowedSigner struct {
	Principals []string `json:"principals"`
	// Key is the public key in authorized_keys form ("ssh-ed25519 AAAA…").
	Key string `json:"key"`
}

// Is reports whether the line's key is pub.
func (s AllowedSigner) Is(pub ssh.PublicKey) bool {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.Key))
	return err == nil && bytes.Equal(key.Marshal(), pub.Marshal())
}

// ParseAllowedSigners reads an allowed_signers file: "principals [options]
// keytype base64 [comment]" per line, # comments and blank lines ignored. A
// namespaces="…" option that does not list lifeboat excludes the line.
func ParseAllowedSigners(text string) ([]AllowedSigner, error) {
	return ParseAllowedSignersFor(text, SignatureNamespace)
}

// ParseAllowedSignersFor reads the lines of an allowed_signers file that
// allow namespace (record.EvidenceNamespace: the worker's key).
func ParseAllowedSignersFor(text, namespace string) ([]AllowedSigner, error) {
	var out []AllowedSigner
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		principals, rest, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("allowed_signers line %d: want \"PRINCIPALS [OPTIONS] KEYTYPE KEY\"", n)
		}
		// ParseAuthorizedKey reads the options and the key, as in authorized_keys.
		pub, _, options, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(rest)))
		if err != nil {
			return nil, fmt.Errorf("allowed_signers line %d: %w", n, err)
		}
		if !allowsNamespace(options, namespace) {
			continue
		}
		out = append(out, AllowedSigner{Principals: strings.Split(principals, ","),
			Key: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))})
	}
	return out, sc.Err()
}

func allowsNamespace(options []string, namespace string) bool {
	for _, o := range options {
		if v, ok := strings.CutPrefix(o, "namespaces="); ok {
			return strings.Contains(","+strings.Trim(v, `"`)+",", ","+namespace+",")
		}
	}
	return true
}

// ErrUnproven is returned for a decision whose signature proves nobody.
var ErrUnproven = errors.New("signature does not prove the decision")

// VerifyDecision checks an armored SSH signature of d against the allowed
// signers and returns the principal it proves, who must be by. It refuses a
// missing, malformed or wrong-namespace signature, a key that is not allowed
// for by, and a signature of any other statement (another run, step,
// decision, comment or time).
func VerifyDecision(d Decision, by, armored string, signers []AllowedSigner) error {
	err := VerifyStatement(d.Statement(), by, armored, signers)
	if errors.Is(err, errOtherStatement) {
		return fmt.Errorf("%w: it does not sign this decision (%s %s of %s/%s at %s): %v", ErrUnproven,
			d.Decision, d.Step, d.WorkflowID, d.RunID, d.At.UTC().Format(time.RFC3339), err)
	}
	return err
}

var errOtherStatement = errors.New("the signature is of another text")

// VerifyStatement checks that armored is by's SSH signature (namespace
// lifeboat) of exactly statement, with a key the signers give by.
func VerifyStatement(statement []byte, by, armored string, signers []AllowedSigner) error {
	if strings.TrimSpace(armored) == "" {
		return fmt.Errorf("%w: it is unsigned (sign it: lifeboat sign, or the CLI with --as %s)", ErrUnproven, by)
	}
	sig, err := sshsig.Unarmor([]byte(armored))
	if err != nil {
		return fmt.Errorf("%w: the signature does not parse: %v", ErrUnproven, err)
	}
	if sig.Namespace != SignatureNamespace {
		return fmt.Errorf("%w: signed for namespace %q, not %q", ErrUnproven, sig.Namespace, SignatureNamespace)
	}
	for _, s := range signers {
		if !s.Is(sig.PublicKey) {
			continue
		}
		if !slices.Contains(s.Principals, by) {
			return fmt.Errorf("%w: the key that signed is %s's, not %s's", ErrUnproven, strings.Join(s.Principals, ","), by)
		}
		if err := sshsig.Verify(bytes.NewReader(statement), sig, sig.PublicKey, sig.HashAlgorithm, SignatureNamespace); err != nil {
			return fmt.Errorf("%w (%v)", errOtherStatement, err)
		}
		return nil
	}
	return fmt.Errorf("%w: the key that signed (%s) is not in the worker's allowed_signers", ErrUnproven, ssh.FingerprintSHA256(sig.PublicKey))
}

// SignDecision signs d's statement with signer and returns the armored
// signature (what `ssh-keygen -Y sign -n lifeboat` writes).
func SignDecision(d Decision, signer ssh.Signer) (string, error) {
	sig, err := sshsig.SignWithRand(bytes.NewReader(d.Statement()), rand.Reader, signer, sshsig.HashSHA512, SignatureNamespace)
	if err != nil {
		return "", err
	}
	return string(sshsig.Armor(sig)), nil
}
