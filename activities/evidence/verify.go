package evidence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
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
	Records   int
	Approvals int
	Links     int
	// Positions counts the chain positions checked.
	Positions int
	// CrossChecked counts the records compared with Temporal's history.
	CrossChecked int
	Findings     []Finding
	// chained are the final records each at its position (name → runbook);
	// finals every final record seen with a position.
	chained, finals map[string]string
}

// Verify checks evidence records (X.json files, or every record in a
// directory) as an auditor would: the worker's signature of each file
// (X.json.sig) against the worker keys the auditor trusts, every signed
// decision in it against the allowed signers the record holds, its
// Markdown against its JSON, and the chain: each final record's link to
// the previous record of its runbook, and (for a directory) each
// runbook's chain of signed positions and its head. An edit names the
// record and the field.
func Verify(paths []string, workerKeys []proof.AllowedSigner) (Report, error) {
	ctx := context.Background()
	r := newReport()
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return r, err
		}
		if !st.IsDir() {
			v := verifier{st: NewDirStore(filepath.Dir(p)), keys: workerKeys, r: &r}
			v.record(ctx, filepath.Base(p))
			continue
		}
		if err := verifyAll(ctx, NewDirStore(p), workerKeys, &r); err != nil {
			return r, err
		}
	}
	if r.Records == 0 {
		return r, errors.New("no evidence records found (X.json files)")
	}
	return r, nil
}

// VerifyStore checks every record and chain in a store, as Verify does a
// directory.
func VerifyStore(ctx context.Context, st Store, workerKeys []proof.AllowedSigner) (Report, error) {
	r := newReport()
	if err := verifyAll(ctx, st, workerKeys, &r); err != nil {
		return r, err
	}
	if v, ok := st.(versioned); ok {
		hidden, err := v.Hidden(ctx)
		if err != nil {
			return r, fmt.Errorf("listing the versions in %s: %w", st.Location(""), err)
		}
		for _, h := range hidden {
			switch {
			case h.Deleted && h.Kept != "":
				r.add(h.Name, "", "deleted: a delete marker hides it; its version %s is still in the bucket (read it with that version id)", h.Kept)
			case h.Deleted:
				r.add(h.Name, "", "deleted: a delete marker hides it and no earlier version is left")
			default:
				r.add(h.Name, "", "a chain position written %d times (a position is written once): its first version is the one it took", h.Versions)
			}
		}
	}
	if r.Records == 0 {
		return r, fmt.Errorf("no evidence records found in %s", st.Location(""))
	}
	return r, nil
}

// versioned is a store that keeps every version of its objects (an S3
// bucket with Object Lock): deleting the newest record with its position
// and head shows there, which no listing of current objects can show.
type versioned interface {
	Hidden(ctx context.Context) ([]Hidden, error)
}

// Merge adds another report's counts and findings.
func (r *Report) Merge(o Report) {
	r.Records += o.Records
	r.Approvals += o.Approvals
	r.Links += o.Links
	r.Positions += o.Positions
	r.CrossChecked += o.CrossChecked
	r.Findings = append(r.Findings, o.Findings...)
}

func newReport() Report { return Report{chained: map[string]string{}, finals: map[string]string{}} }

type verifier struct {
	st   Store
	keys []proof.AllowedSigner
	r    *Report
}

func verifyAll(ctx context.Context, st Store, keys []proof.AllowedSigner, r *Report) error {
	v := verifier{st: st, keys: keys, r: r}
	all, err := st.List(ctx, "", "")
	if err != nil {
		return fmt.Errorf("listing %s: %w", st.Location(""), err)
	}
	for _, name := range all {
		if !strings.Contains(name, "/") && strings.HasSuffix(name, ".json") && name != legacyChainFile {
			v.record(ctx, name)
		}
	}
	chains := map[string][]string{}
	for _, name := range all {
		if rest, ok := strings.CutPrefix(name, chainDir); ok && strings.Count(rest, "/") == 1 {
			dir := chainDir + rest[:strings.Index(rest, "/")+1]
			chains[dir] = append(chains[dir], name)
		}
	}
	for _, dir := range slices.Sorted(maps.Keys(chains)) {
		v.chain(ctx, dir, chains[dir])
	}
	for _, name := range slices.Sorted(maps.Keys(r.finals)) {
		if _, ok := r.chained[name]; !ok {
			r.add(name, "seal.position", "not at its position in the chain of runbook %s: a store that lost a race and never finished, or a record written around the chain", r.finals[name])
		}
	}
	v.legacyHeads(ctx)
	return nil
}

func (r *Report) add(file, field, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{File: path.Base(file), Field: field, Problem: fmt.Sprintf(format, args...)})
}

func (v verifier) record(ctx context.Context, name string) {
	r := v.r
	raw, err := v.st.Get(ctx, name)
	if err != nil {
		r.add(name, "", "%v", err)
		return
	}
	var e record.Evidence
	if err := json.Unmarshal(raw, &e); err != nil || e.WorkflowID == "" {
		if strings.HasSuffix(name, ".reenactment.json") {
			return // a re-enactment's comparison, not a record
		}
		r.add(name, "", "not an evidence record (%v)", err)
		return
	}
	r.Records++
	if e.Seal == nil {
		r.add(name, "seal", "the record is not sealed: written before sealing existed, or rewritten without its seal")
		return
	}
	if e.Seal.Position > 0 {
		r.finals[name] = e.Runbook.Name
	}
	v.signature(ctx, name, raw, e)
	r.decisions(name, e)
	v.companions(ctx, name, e)
	if e.Seal.Previous != "" {
		r.Links++
		prev, err := v.st.Get(ctx, path.Join(path.Dir(name), e.Seal.Previous))
		switch {
		case err != nil:
			r.add(name, "seal.previous", "the previous record of runbook %s, %s, is missing (deleted?)", e.Runbook.Name, e.Seal.Previous)
		case runbooks.HashOf(prev) != e.Seal.PreviousHash:
			r.add(name, "seal.previousHash", "the previous record of runbook %s, %s, was changed after this record was chained to it", e.Runbook.Name, e.Seal.Previous)
		}
	}
}

// workerSigned says what is wrong with a worker's signature of data ("":
// nothing): it must parse, be by a lifeboat-worker key the auditor
// trusts, and verify.
func (v verifier) workerSigned(data []byte, armored []byte) string {
	sig, err := sshsig.Unarmor(armored)
	if err != nil {
		return fmt.Sprintf("the signature does not parse: %v", err)
	}
	trusted := slices.ContainsFunc(v.keys, func(s proof.AllowedSigner) bool {
		return s.Is(sig.PublicKey) && slices.Contains(s.Principals, record.WorkerPrincipal)
	})
	if !trusted {
		return fmt.Sprintf("signed by %s, which is not a %s key of the allowed signers given", ssh.FingerprintSHA256(sig.PublicKey), record.WorkerPrincipal)
	}
	if err := sshsig.Verify(bytes.NewReader(data), sig, sig.PublicKey, sig.HashAlgorithm, record.EvidenceNamespace); err != nil {
		return "edited after the worker signed it"
	}
	return ""
}

func (v verifier) signature(ctx context.Context, name string, raw []byte, e record.Evidence) {
	armored, err := v.st.Get(ctx, name+".sig")
	if err != nil {
		v.r.add(name, "signature", "no worker signature (%s.sig): the worker that wrote it had no key, or the signature was removed", path.Base(name))
		return
	}
	problem := v.workerSigned(raw, armored)
	if problem == "" {
		return
	}
	if !strings.HasPrefix(problem, "edited") {
		v.r.add(name, "signature", "%s", problem)
		return
	}
	edited := record.EditedFields(e.Seal.Fields, raw)
	if len(edited) == 0 {
		v.r.add(name, "seal", "the file was edited after the worker signed it (in its seal or formatting)")
	}
	for _, f := range edited {
		v.r.add(name, f, "edited after the worker signed the record")
	}
}

// chain checks one runbook's positions (names under dir, sorted): signed
// by a trusted worker, numbered 1…n without a gap, each naming a record
// that is there, unchanged, sealed at that position after the record of
// the position before; and the head, a copy of a position, not behind the
// newest one it names.
func (v verifier) chain(ctx context.Context, dir string, objects []string) {
	r := v.r
	runbook := strings.TrimSuffix(strings.TrimPrefix(dir, chainDir), "/")
	byName := map[int][]byte{}
	prevFile, n := "", 0
	for _, name := range objects {
		seq := seqOf(name)
		if seq == 0 {
			if name != dir+"head.json" {
				r.add(name, "", "in runbook %s's chain but neither a position (ten digits) nor its head: written by hand?", runbook)
			}
			continue // the head is checked below
		}
		obj, err := v.st.Get(ctx, name)
		if err != nil {
			r.add(name, "", "%v", err)
			continue
		}
		r.Positions++
		for n++; n < seq; n++ {
			r.add(positionName(runbook, n), "", "position %d of runbook %s's chain is missing (deleted?)", n, runbook)
			prevFile = ""
		}
		byName[seq] = obj
		signed, p, err := parsePosition(obj)
		if err != nil {
			r.add(name, "", "%v", err)
			continue
		}
		if chainPrefix(p.Runbook) != dir {
			r.add(name, "runbook", "a position of runbook %s in the chain of %s: copied from another chain?", p.Runbook, runbook)
		}
		runbook = p.Runbook
		if signed.Signature == "" {
			r.add(name, "signature", "the position is not signed: the worker that took it had no key")
		} else if problem := v.workerSigned([]byte(signed.Statement), []byte(signed.Signature)); problem != "" {
			r.add(name, "signature", "position %d of runbook %s: %s", seq, runbook, problem)
		}
		if p.Seq != seq {
			r.add(name, "seq", "the statement says position %d", p.Seq)
		}
		if prevFile != "" && p.Previous != prevFile {
			r.add(name, "previous", "position %d of runbook %s follows %s, but position %d holds %s: the chain forked", seq, runbook, p.Previous, seq-1, prevFile)
		}
		prevFile = p.File
		raw, err := v.st.Get(ctx, p.File)
		switch {
		case err != nil:
			r.add(p.File, "", "the record at position %d of runbook %s is missing (deleted?)", seq, runbook)
			continue
		case runbooks.HashOf(raw) != p.Hash:
			r.add(p.File, "", "the record at position %d of runbook %s was changed after it was stored", seq, runbook)
		}
		var e record.Evidence
		if json.Unmarshal(raw, &e) == nil && e.Seal != nil && e.Seal.Position == seq {
			if other, dup := r.chained[p.File]; dup {
				r.add(p.File, "", "the record holds two positions (of runbooks %s and %s)", other, runbook)
			}
			r.chained[p.File] = runbook
		}
	}
	head, err := v.st.Get(ctx, dir+"head.json")
	if err != nil {
		r.add(dir+"head.json", "", "the chain head of runbook %s is missing (deleted?): its newest records cannot be vouched for", runbook)
		return
	}
	_, h, err := parsePosition(head)
	switch {
	case err != nil:
		r.add(dir+"head.json", "", "the chain head of runbook %s: %v", runbook, err)
	case h.Seq > n:
		r.add(dir+"head.json", "", "the chain head of runbook %s names position %d, which is missing (deleted?) with its record %s", runbook, h.Seq, h.File)
	case !bytes.Equal(head, byName[h.Seq]):
		r.add(dir+"head.json", "", "the chain head of runbook %s is not the position %d it names (written by hand?)", runbook, h.Seq)
	}
}

// decisions checks every signed decision the record holds against the
// allowed signers it recorded, and that each statement is about this run.
func (r *Report) decisions(file string, e record.Evidence) {
	check := func(field, by, step string, p *proof.Proof, wantRun bool) {
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
			r.add(file, field, "%s's signed statement is about another run or step", by)
			return
		}
		if err := proof.VerifyStatement([]byte(p.Statement), by, p.Signature, e.AllowedSigners); err != nil {
			r.add(file, field, "%s's signature does not verify: %v", by, err)
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

// legacyHeads checks the newest records named by a chain file written
// before positions existed.
func (v verifier) legacyHeads(ctx context.Context) {
	heads := legacyHeads(ctx, v.st)
	for _, name := range slices.Sorted(maps.Keys(heads)) {
		h := heads[name]
		b, err := v.st.Get(ctx, h.File)
		switch {
		case err != nil:
			v.r.add(legacyChainFile, name, "the newest record of runbook %s, %s, is missing (deleted?)", name, h.File)
		case runbooks.HashOf(b) != h.Hash:
			v.r.add(h.File, "", "the newest record of runbook %s was changed after it was stored", name)
		}
	}
}

// StoredByRun is a final record a finished run's history says its worker
// stored: the run, where (a path or s3:// URL) and the bytes.
type StoredByRun struct {
	Run      string
	Location string
	JSON     []byte
}

// CrossCheck compares the store with what Temporal's finished runs say
// was stored in it: each such record must be there, byte for byte. It
// catches what the store alone cannot: the newest record deleted with its
// chain position and an older head put back. Records a run stored in
// another place (another bucket or prefix; for a directory, only the
// file name is compared, as an auditor's mount differs from the
// worker's) are not counted.
func (r *Report) CrossCheck(ctx context.Context, st Store, stored []StoredByRun) {
	root := st.Location("")
	for _, s := range stored {
		name := path.Base(filepath.ToSlash(s.Location))
		if strings.HasPrefix(root, "s3://") != strings.HasPrefix(s.Location, "s3://") ||
			strings.HasPrefix(root, "s3://") && s.Location != st.Location(name) {
			continue
		}
		r.CrossChecked++
		b, err := st.Get(ctx, name)
		switch {
		case err != nil:
			r.add(name, "", "run %s finished and its history says its worker stored this record, but it is missing (deleted?)", s.Run)
		case !bytes.Equal(b, s.JSON):
			r.add(name, "", "differs from the record run %s's history says its worker stored (changed?)", s.Run)
		}
	}
}

// companions checks the files stored beside a record against the digests
// its signed seal lists. A record sealed before seals listed them had an
// unsigned Markdown file, rendered by the lifeboat of then: it must be
// there, and nothing more can be said of it (this build renders otherwise).
func (v verifier) companions(ctx context.Context, name string, e record.Evidence) {
	r := v.r
	files := e.Seal.Files
	if files == nil {
		files = map[string]string{".md": ""}
	}
	what := map[string]string{".md": "Markdown file", ".svg": "timeline picture"}
	for _, suffix := range slices.Sorted(maps.Keys(files)) {
		file := what[suffix]
		if file == "" {
			file = suffix + " file"
		}
		switch b, err := v.st.Get(ctx, beside(name, suffix)); {
		case errors.Is(err, fs.ErrNotExist):
			r.add(name, "seal.files", "the %s beside it (%s) is missing (deleted?): lifeboat evidence %s -o json --from history --out %s writes the record and the files beside it again", file, path.Base(beside(name, suffix)), e.WorkflowID, path.Base(name))
		case err != nil:
			r.add(name, "seal.files", "%v", err)
		case files[suffix] != "" && runbooks.HashOf(b) != files[suffix]:
			r.add(name, "seal.files", "the %s beside it (%s) no longer says what the signed JSON says", file, path.Base(beside(name, suffix)))
		}
	}
}
