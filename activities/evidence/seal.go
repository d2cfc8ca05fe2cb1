package evidence

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// WithKey makes the sink sign every record it writes with the worker's key
// (FILE.sig beside FILE.json) and chain each final record to the previous
// final record of the same runbook. One worker process writes a directory:
// the chain is kept under a lock in this process.
func (s *DirSink) WithKey(key ssh.Signer) *DirSink {
	s.key = key
	return s
}

// chainFile records the newest final record of each runbook: the head a
// new record chains to, and what a verifier checks the last record against.
const chainFile = ".chain.json"

type link struct {
	File string `json:"file"`
	Hash string `json:"hash"`
}

// seal fills e.Seal (chained, through heads, to the runbook's previous
// final record unless e is a checkpoint) and returns the file's bytes and
// their signature ("" without a key).
func (s *DirSink) seal(e *runbooks.Evidence, jsonPath string, heads map[string]link) (record []byte, signature string, err error) {
	e.Seal = nil
	plain, err := json.Marshal(e)
	if err != nil {
		return nil, "", err
	}
	fields, err := runbooks.FieldDigests(plain)
	if err != nil {
		return nil, "", err
	}
	seal := &runbooks.Seal{Fields: fields}
	if e.Outcome != "in-progress" {
		seal.Previous, seal.PreviousHash = previous(heads, e.Runbook.Name, jsonPath)
	} else {
		seal.Checkpoint = true
	}
	if s.key != nil {
		seal.Signer = ssh.FingerprintSHA256(s.key.PublicKey())
	}
	e.Seal = seal
	pretty, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return nil, "", err
	}
	record = append(pretty, '\n')
	if s.key == nil {
		return record, "", nil
	}
	sig, err := sshsig.SignWithRand(bytes.NewReader(record), rand.Reader, s.key, sshsig.HashSHA512, runbooks.EvidenceNamespace)
	if err != nil {
		return nil, "", err
	}
	return record, string(sshsig.Armor(sig)), nil
}

// previous is the link to the runbook's newest final record: the chain's
// head, or, when the head is this very record (a retried store), the link
// it already had.
func previous(heads map[string]link, runbook, jsonPath string) (file, hash string) {
	head := heads[runbook]
	if head.File != filepath.Base(jsonPath) {
		return head.File, head.Hash
	}
	var own runbooks.Evidence
	if b, err := os.ReadFile(jsonPath); err == nil && json.Unmarshal(b, &own) == nil && own.Seal != nil {
		return own.Seal.Previous, own.Seal.PreviousHash
	}
	return "", ""
}

func (s *DirSink) heads() map[string]link {
	heads := map[string]link{}
	if b, err := os.ReadFile(filepath.Join(s.dir, chainFile)); err == nil {
		_ = json.Unmarshal(b, &heads)
	}
	return heads
}

// advance makes the record the runbook's chain head.
func (s *DirSink) advance(heads map[string]link, runbook, jsonPath string, record []byte) error {
	heads[runbook] = link{File: filepath.Base(jsonPath), Hash: runbooks.HashOf(record)}
	b, err := json.MarshalIndent(heads, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.dir, chainFile), append(b, '\n'))
}
