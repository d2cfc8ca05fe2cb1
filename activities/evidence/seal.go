package evidence

import (
	"bytes"
	"crypto/rand"
	"encoding/json"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// WithKey makes the sink sign every record it writes with the worker's key
// (FILE.sig beside FILE.json) and every chain position it takes. Each
// worker has its own key: a verifier trusts every lifeboat-worker key in
// its allowed_signers.
func (s *Sink) WithKey(key ssh.Signer) *Sink {
	s.key = key
	return s
}

// seal fills e.Seal — chained to prev at position seq, or a checkpoint
// when seq is 0, listing the digests of the files stored beside it — and returns the file's bytes and their signature (""
// without a key).
func (s *Sink) seal(e *record.Evidence, prev link, seq int, files map[string]string) (raw []byte, signature string, err error) {
	e.Seal = nil
	plain, err := json.Marshal(e)
	if err != nil {
		return nil, "", err
	}
	fields, err := record.FieldDigests(plain)
	if err != nil {
		return nil, "", err
	}
	seal := &record.Seal{Fields: fields, Checkpoint: seq == 0, Position: seq, Previous: prev.File, PreviousHash: prev.Hash,
		Files: map[string]string{}}
	for suffix, content := range files {
		seal.Files[suffix] = runbooks.HashOf([]byte(content))
	}
	if s.key != nil {
		seal.Signer = ssh.FingerprintSHA256(s.key.PublicKey())
	}
	e.Seal = seal
	pretty, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return nil, "", err
	}
	raw = append(pretty, '\n')
	if s.key == nil {
		return raw, "", nil
	}
	sig, err := sshsig.SignWithRand(bytes.NewReader(raw), rand.Reader, s.key, sshsig.HashSHA512, record.EvidenceNamespace)
	if err != nil {
		return nil, "", err
	}
	return raw, string(sshsig.Armor(sig)), nil
}
