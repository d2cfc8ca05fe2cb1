package evidence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Finding is one thing wrong with a stored evidence record.
type Finding struct {
	File    string
	Field   string
	Problem string
}

func (f Finding) String() string {
	if f.Field == "" {
		return fmt.Sprintf("%s: %s", f.File, f.Problem)
	}
	return fmt.Sprintf("%s: %s: %s", f.File, f.Field, f.Problem)
}

// Report is what Verify checked and found.
type Report struct {
	Records    int
	Approvals  int
	Links      int
	Findings   []Finding
	checkedDir map[string]bool
}

// Verify checks evidence records (X.json files, or every record in a
// directory) as an auditor would: the worker's signature of each file
// (X.json.sig) against the worker keys the auditor trusts, every signed
// decision in it against the allowed signers the record holds, its
// Markdown against its JSON, and the chain: each final record's link to
// the previous record of its runbook, and (for a directory) each
// runbook's newest record. An edit names the record and the field.
func Verify(paths []string, workerKeys []runbooks.AllowedSigner) (Report, error) {
	r := Report{checkedDir: map[string]bool{}}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return r, err
		}
		if !st.IsDir() {
			r.file(p, workerKeys)
			continue
		}
		files, err := filepath.Glob(filepath.Join(p, "*.json"))
		if err != nil {
			return r, err
		}
		for _, f := range files {
			if filepath.Base(f) != chainFile {
				r.file(f, workerKeys)
			}
		}
		r.heads(p)
	}
	if r.Records == 0 {
		return r, errors.New("no evidence records found (X.json files)")
	}
	return r, nil
}

func (r *Report) add(file, field, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{File: filepath.Base(file), Field: field, Problem: fmt.Sprintf(format, args...)})
}

func (r *Report) file(path string, workerKeys []runbooks.AllowedSigner) {
	record, err := os.ReadFile(path)
	if err != nil {
		r.add(path, "", "%v", err)
		return
	}
	var e runbooks.Evidence
	if err := json.Unmarshal(record, &e); err != nil || e.WorkflowID == "" {
		if strings.Contains(filepath.Base(path), ".then-vs-now") {
			return // a re-enactment's comparison, not a record
		}
		r.add(path, "", "not an evidence record (%v)", err)
		return
	}
	r.Records++
	if e.Seal == nil {
		r.add(path, "seal", "the record is not sealed: written before sealing existed, or rewritten without its seal")
		return
	}
	r.signature(path, record, e, workerKeys)
	r.decisions(path, e)
	if md, err := os.ReadFile(strings.TrimSuffix(path, ".json") + ".md"); err == nil && string(md) != e.Markdown() {
		r.add(path, "markdown", "the Markdown file no longer says what the signed JSON says")
	}
	if e.Seal.Previous != "" {
		r.Links++
		prev, err := os.ReadFile(filepath.Join(filepath.Dir(path), e.Seal.Previous))
		switch {
		case err != nil:
			r.add(path, "seal.previous", "the previous record of runbook %s, %s, is missing (deleted?)", e.Runbook.Name, e.Seal.Previous)
		case runbooks.HashOf(prev) != e.Seal.PreviousHash:
			r.add(path, "seal.previousHash", "the previous record of runbook %s, %s, was changed after this record was chained to it", e.Runbook.Name, e.Seal.Previous)
		}
	}
}

func (r *Report) signature(path string, record []byte, e runbooks.Evidence, workerKeys []runbooks.AllowedSigner) {
	armored, err := os.ReadFile(path + ".sig")
	if err != nil {
		r.add(path, "signature", "no worker signature (%s.sig): the worker that wrote it had no key, or the signature was removed", filepath.Base(path))
		return
	}
	sig, err := sshsig.Unarmor(armored)
	if err != nil {
		r.add(path, "signature", "the signature file does not parse: %v", err)
		return
	}
	trusted := slices.ContainsFunc(workerKeys, func(s runbooks.AllowedSigner) bool {
		return s.Is(sig.PublicKey) && slices.Contains(s.Principals, runbooks.WorkerPrincipal)
	})
	if !trusted {
		r.add(path, "signature", "signed by %s, which is not a %s key of the allowed signers given", ssh.FingerprintSHA256(sig.PublicKey), runbooks.WorkerPrincipal)
		return
	}
	if err := sshsig.Verify(bytes.NewReader(record), sig, sig.PublicKey, sig.HashAlgorithm, runbooks.EvidenceNamespace); err == nil {
		return
	}
	edited := runbooks.EditedFields(e.Seal.Fields, record)
	if len(edited) == 0 {
		r.add(path, "seal", "the file was edited after the worker signed it (in its seal or formatting)")
	}
	for _, f := range edited {
		r.add(path, f, "edited after the worker signed the record")
	}
}

// decisions checks every signed decision the record holds against the
// allowed signers it recorded, and that each statement is about this run.
func (r *Report) decisions(path string, e runbooks.Evidence) {
	check := func(field, by, step string, p *runbooks.Proof, wantRun bool) {
		if p == nil {
			return
		}
		r.Approvals++
		about := "workflow: " + e.WorkflowID + "\n"
		if field == "requestProof" && e.PlanRun != "" && strings.HasPrefix(e.WorkflowID, e.PlanRun+".") {
			about = "workflow: " + e.PlanRun + "\n" // a plan member is requested by its plan's start
		}
		if wantRun {
			about += "run: " + e.RunID + "\nstep: " + step + "\n"
		}
		if !strings.Contains(p.Statement, about) {
			r.add(path, field, "%s's signed statement is about another run or step", by)
			return
		}
		if err := runbooks.VerifyStatement([]byte(p.Statement), by, p.Signature, e.AllowedSigners); err != nil {
			r.add(path, field, "%s's signature does not verify: %v", by, err)
		}
	}
	check("requestProof", e.RequestedBy, "", e.RequestProof, false)
	for i, s := range e.Steps {
		for j, a := range s.Approvals {
			check(fmt.Sprintf("steps[%d] %s approvals[%d]", i, s.ID, j), a.By, s.ID, a.Proof, true)
		}
	}
	for i, ev := range e.Events {
		check(fmt.Sprintf("events[%d] %s", i, ev.Kind), ev.By, ev.Step, ev.Proof, true)
	}
}

// heads checks each runbook's newest record in dir against the chain head:
// deleting the newest record leaves no successor to notice, the head does.
func (r *Report) heads(dir string) {
	heads := (&DirSink{dir: dir}).heads()
	for _, name := range slices.Sorted(maps.Keys(heads)) {
		h := heads[name]
		b, err := os.ReadFile(filepath.Join(dir, h.File))
		switch {
		case err != nil:
			r.add(chainFile, name, "the newest record of runbook %s, %s, is missing (deleted?)", name, h.File)
		case runbooks.HashOf(b) != h.Hash:
			r.add(h.File, "", "the newest record of runbook %s was changed after it was stored", name)
		}
	}
}
