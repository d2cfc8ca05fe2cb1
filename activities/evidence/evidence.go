// Package evidence implements evidence.store: the run's Evidence written as
// JSON and Markdown, signed and chained, to a directory or an S3 bucket
// outside the cluster being restored; and Verify, the auditor's check.
package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// StoreInput is what the workflow sends to evidence.store.
type StoreInput struct {
	runbooks.StepInput
	Evidence record.Evidence `json:"evidence"`
}

// Sink writes evidence records into a Store: a directory (lifeboat dev,
// one host) or an S3 bucket with Object Lock (production, any number of
// workers).
type Sink struct {
	store Store // nil: no evidence location configured
	key   ssh.Signer
}

// NewSink returns a sink writing into st.
func NewSink(st Store) *Sink { return &Sink{store: st} }

// NewDirSink returns a sink writing into dir (created on first use); ""
// makes a sink whose stores fail with a configuration error.
func NewDirSink(dir string) *Sink {
	if dir == "" {
		return &Sink{}
	}
	return NewSink(NewDirStore(dir))
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// RecordName is the name of a run's evidence record in a store:
// WORKFLOWID.RUNID.json, so a run started under a reused workflow id
// overwrites nothing. The files kept beside it share its stem (beside).
func RecordName(workflowID, runID string) string {
	base := safeName(workflowID)
	if runID != "" {
		base += "." + safeName(runID)
	}
	return base + ".json"
}

// beside is the name of the file with suffix (".md", ".svg", ".json.sig")
// kept beside the record jsonName.
func beside(jsonName, suffix string) string { return strings.TrimSuffix(jsonName, ".json") + suffix }

// stem is a record's name without its directory and .json: what the files
// beside it are named after.
func stem(jsonName string) string { return path.Base(beside(jsonName, "")) }

// Paths returns where one run's evidence is (file paths, or s3:// URLs).
func (s *Sink) Paths(workflowID, runID string) (jsonPath, mdPath string) {
	j := RecordName(workflowID, runID)
	m := beside(j, ".md")
	if s.store == nil {
		return j, m
	}
	return s.store.Location(j), s.store.Location(m)
}

func safeName(id string) string { return unsafeName.ReplaceAllString(id, "_") }

// Runs returns where the JSON evidence of every run of a workflow id is,
// the latest (by end time) last. Files written before evidence was keyed
// by run (WORKFLOWID.json) count as one more run.
func (s *Sink) Runs(workflowID string) ([]string, error) {
	runs, err := s.runNames(context.Background(), workflowID)
	for i, r := range runs {
		runs[i] = s.store.Location(r)
	}
	return runs, err
}

func (s *Sink) runNames(ctx context.Context, workflowID string) ([]string, error) {
	if s.store == nil {
		return nil, errNoStore
	}
	prefix := safeName(workflowID)
	all, err := s.store.List(ctx, prefix, "")
	if err != nil {
		return nil, err
	}
	type found struct {
		name  string
		ended time.Time
	}
	var runs []found
	for _, name := range all {
		rest := strings.TrimPrefix(name, prefix)
		if strings.Contains(name, "/") || !strings.HasSuffix(rest, ".json") {
			continue
		}
		rest = strings.TrimSuffix(rest, ".json")
		if rest != "" && (!strings.HasPrefix(rest, ".") || strings.Contains(rest[1:], ".")) {
			continue // another id, or a re-enactment comparison
		}
		var head struct {
			EndedAt time.Time `json:"endedAt"`
		}
		if b, err := s.store.Get(ctx, name); err == nil {
			_ = json.Unmarshal(b, &head)
		}
		runs = append(runs, found{name, head.EndedAt})
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("no evidence of %s in %s: %w", workflowID, s.store.Location(""), fs.ErrNotExist)
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].ended.Before(runs[j].ended) })
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.name
	}
	return out, nil
}

var errNoStore = temporal.NewNonRetryableApplicationError("evidence.store: the worker has no evidence location: set evidenceDir (or evidence.s3) in its config, or LIFEBOAT_EVIDENCE_DIR", "ConfigError", nil)

// A store that lost the race for a position waits a random time, up to a
// bound that doubles with each lost race ("full jitter"): writers that
// collided spread out instead of colliding again at once. Every lost race
// is another worker's append, so the chain always moves; a store keeps
// trying until its context ends (the activity's timeout, then its retry).
const (
	raceBackoffBase = 5 * time.Millisecond
	raceBackoffMax  = time.Second
)

// raceBackoff waits before attempt n+1 after n lost races, or returns the
// context's error.
func raceBackoff(ctx context.Context, lost int) error {
	limit := raceBackoffMax
	if lost < 16 && raceBackoffBase<<lost < limit {
		limit = raceBackoffBase << lost
	}
	t := time.NewTimer(rand.N(limit) + time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// maxWriteMargin is the most of an attempt's time writeCutoff keeps free.
const maxWriteMargin = 10 * time.Second

// writeCutoff ends an attempt's writes before its deadline: a quarter of
// the time left (at most maxWriteMargin) before it, every store operation
// the attempt started is cancelled and it starts no other; an attempt cut
// so returns only at its deadline (Store), so Temporal times it out and
// starts the next attempt only after the deadline and the retry's backoff
// — not at once, as it would for an attempt that returned its failure.
// Two attempts of one store so never write at once — an older attempt
// still writing a record sealed at a stale position could otherwise
// overwrite the record a newer attempt has chained — unless a cancelled
// write (an S3 PUT whose body was sent) lands more than the margin late:
// the margin bounds it. Without a deadline (tests, lifeboat evidence
// rebuild) nothing changes.
func writeCutoff(ctx context.Context, now time.Time) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(maxWriteMargin, deadline.Sub(now)/4)
	return context.WithDeadline(ctx, deadline.Add(-margin))
}

// Store writes the evidence whole (a checkpoint replaces the run's earlier
// checkpoint). A final record takes the next position of its runbook's
// chain: sealed after the newest record, written (locked where the store
// can), then the position claimed with Store.Create; if another worker
// claimed it first the record is sealed again after that one, after a
// random wait (raceBackoff).
func (s *Sink) Store(attempt context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	ctx, cancel := writeCutoff(attempt, time.Now())
	defer cancel()
	out, err := s.storeWithin(ctx, in)
	if err != nil && ctx.Err() != nil && attempt.Err() == nil {
		<-attempt.Done() // cut: the next attempt starts after this one's deadline (writeCutoff)
	}
	return out, err
}

// storeWithin is Store within the attempt's cut-off.
func (s *Sink) storeWithin(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	ev, ok := in.Args["evidence"]
	if !ok {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError("evidence.store: no evidence passed by the workflow", "InvalidArgument", nil)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	var e record.Evidence
	if err := json.Unmarshal(b, &e); err != nil {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError("evidence.store: "+err.Error(), "InvalidArgument", nil)
	}
	if s.store == nil {
		return runbooks.StepResult{}, errNoStore
	}
	jsonName, err := s.unsealedName(ctx, e)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	if e.Outcome == "in-progress" {
		files := e.Companions(stem(jsonName))
		raw, signature, err := s.seal(&e, link{}, 0, files)
		if err == nil {
			err = s.write(ctx, jsonName, raw, signature, files, false)
		}
		return s.stored(jsonName, nil, ""), err
	}
	if out, done, err := s.alreadyChained(ctx, e, jsonName); done || err != nil {
		return out, err
	}
	return s.chainRecord(ctx, e, jsonName)
}

// chainRecord seals a final record after its runbook's chain tip, writes
// it and takes the next position. A record a position names is never
// written again: when the tip already names this record (an earlier or
// concurrent attempt of the same store took it), or the position this
// attempt lost turns out to be its own (its Create landed, the answer did
// not, and the client's retry met the condition), the store is done.
func (s *Sink) chainRecord(ctx context.Context, e record.Evidence, jsonName string) (runbooks.StepResult, error) {
	for lost := 0; ; lost++ {
		t, err := tip(ctx, s.store, e.Runbook.Name)
		if err != nil {
			return runbooks.StepResult{}, fmt.Errorf("evidence.store: reading the chain of runbook %s: %w", e.Runbook.Name, err)
		}
		if t.Seq > 0 && t.File == jsonName {
			out, done, err := s.alreadyChained(ctx, e, jsonName)
			if done || err != nil {
				return out, err
			}
			return runbooks.StepResult{}, fmt.Errorf("evidence.store: position %d of runbook %s names %s, but the record there is not the one it vouches for; nothing written (lifeboat evidence verify names it)", t.Seq, e.Runbook.Name, s.store.Location(jsonName))
		}
		files := e.Companions(stem(jsonName))
		raw, signature, err := s.seal(&e, link{t.File, t.Hash}, t.Seq+1, files)
		if err != nil {
			return runbooks.StepResult{}, err
		}
		if err := ctx.Err(); err != nil {
			// Past its cut-off an attempt writes nothing more (writeCutoff).
			return runbooks.StepResult{}, fmt.Errorf("evidence.store: %w", err)
		}
		if err := s.write(ctx, jsonName, raw, signature, files, true); err != nil {
			return runbooks.StepResult{}, err
		}
		p := position{Runbook: e.Runbook.Name, Seq: t.Seq + 1, File: jsonName, Hash: runbooks.HashOf(raw), Previous: t.File}
		obj, err := sign(p, s.key)
		if err != nil {
			return runbooks.StepResult{}, err
		}
		err = s.store.Create(ctx, positionName(p.Runbook, p.Seq), obj)
		if errors.Is(err, ErrExists) {
			mine, herr := s.holds(ctx, p)
			if herr != nil {
				// The position exists but cannot be read: it may be this
				// very record's (the Create landed, its answer was lost, the
				// client's retry met the condition). Taking it for another
				// worker's would seal the record again after whatever is
				// newest by then — rewriting the record this position
				// already vouches for, and which a later record may already
				// be chained to — and take a second position. Stop instead:
				// the activity's retry finds the record in place
				// (alreadyChained) or chains it if the position is not its.
				return runbooks.StepResult{}, fmt.Errorf("evidence.store: position %d of runbook %s exists and could not be read to tell whether it is this record's; nothing more written: %w", p.Seq, p.Runbook, herr)
			}
			if mine {
				err = nil // the position met is this very one: the Create landed
			}
		}
		switch {
		case errors.Is(err, ErrExists): // another worker appended first: seal after its record
			if err := raceBackoff(ctx, lost); err != nil {
				return runbooks.StepResult{}, fmt.Errorf("evidence.store: other workers took the next position of runbook %s's chain %d times in a row, until %w; the activity retries", e.Runbook.Name, lost+1, err)
			}
			continue
		case err != nil:
			return runbooks.StepResult{}, fmt.Errorf("evidence.store: taking position %d of runbook %s: %w", p.Seq, p.Runbook, err)
		}
		if err := advanceHead(ctx, s.store, p.Runbook, p.Seq, obj); err != nil {
			return runbooks.StepResult{}, fmt.Errorf("evidence.store: the chain head of runbook %s: %w", p.Runbook, err)
		}
		return s.stored(jsonName, e.Seal, signature), nil
	}
}

// holds reports whether the position p names is already this record's:
// a Create that met an existing object may have met its own. An error
// when the position could not be read: then nobody can tell, and the
// record must not be sealed again.
func (s *Sink) holds(ctx context.Context, p position) (bool, error) {
	b, err := s.store.Get(ctx, positionName(p.Runbook, p.Seq))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, there, err := parsePosition(b)
	return err == nil && there.File == p.File && there.Hash == p.Hash, nil
}

// write puts a record, its signature and the files beside it (Companions).
func (s *Sink) write(ctx context.Context, jsonName string, raw []byte, signature string, files map[string]string, lock bool) error {
	if err := s.store.Put(ctx, jsonName, raw, lock); err != nil {
		return fmt.Errorf("evidence.store: %w", err)
	}
	if signature != "" {
		if err := s.store.Put(ctx, jsonName+".sig", []byte(signature), lock); err != nil {
			return fmt.Errorf("evidence.store: %w", err)
		}
	}
	for _, suffix := range slices.Sorted(maps.Keys(files)) {
		if err := s.store.Put(ctx, beside(jsonName, suffix), []byte(files[suffix]), lock); err != nil {
			return fmt.Errorf("evidence.store: %w", err)
		}
	}
	return nil
}

// stored is the activity's result. A final record's seal and signature go
// to history too: evidence rebuilt from history is this very file, and
// verifies.
func (s *Sink) stored(jsonName string, seal *record.Seal, signature string) runbooks.StepResult {
	out := runbooks.StepResult{Summary: "stored " + s.store.Location(jsonName),
		Outputs: map[string]any{"json": s.store.Location(jsonName), "markdown": s.store.Location(beside(jsonName, ".md")),
			"timeline": s.store.Location(beside(jsonName, ".svg"))}}
	if seal != nil {
		out.Outputs["seal"], out.Outputs["signature"] = seal, signature
	}
	return out
}

// alreadyChained answers a retried store of a final record that is
// already in place and holds its position (the first attempt's result
// was lost): its seal and signature, nothing written again but the head.
// Once the record holds its position it is never sealed again: a failure
// then is an error for the activity to retry, not a reason to re-seal
// (that would change a record its position already vouches for).
func (s *Sink) alreadyChained(ctx context.Context, e record.Evidence, jsonName string) (runbooks.StepResult, bool, error) {
	b, err := s.store.Get(ctx, jsonName)
	if err != nil {
		return runbooks.StepResult{}, false, unlessMissing(err)
	}
	var old record.Evidence
	if json.Unmarshal(b, &old) != nil || old.Seal == nil || old.Seal.Position == 0 || !old.EndedAt.Equal(e.EndedAt) {
		return runbooks.StepResult{}, false, nil
	}
	obj, err := s.store.Get(ctx, positionName(old.Runbook.Name, old.Seal.Position))
	if err != nil {
		return runbooks.StepResult{}, false, unlessMissing(err)
	}
	if _, p, err := parsePosition(obj); err != nil || p.File != jsonName || p.Hash != runbooks.HashOf(b) {
		return runbooks.StepResult{}, false, nil
	}
	signature, err := s.store.Get(ctx, jsonName+".sig")
	if err := unlessMissing(err); err != nil {
		return runbooks.StepResult{}, false, err
	}
	if err := advanceHead(ctx, s.store, old.Runbook.Name, old.Seal.Position, obj); err != nil {
		return runbooks.StepResult{}, false, fmt.Errorf("evidence.store: the chain head of runbook %s: %w", old.Runbook.Name, err)
	}
	return s.stored(jsonName, old.Seal, string(signature)), true, nil
}

// unlessMissing is a read's error unless it only says the object is not
// there.
func unlessMissing(err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("evidence.store: %w", err)
}

// unsealedName is the record a store of e writes: its run's name,
// unless it holds the final record of another ending of the same run (a
// Temporal reset of a finished run keeps its first run id, so its evidence
// id, and ends again). A final record is never overwritten by another
// ending: the new one goes beside it (WORKFLOWID.RUNID-2.json, -3, …) and
// chains after it like any later record. A retried store of the same
// ending (the same end time) rewrites its own file.
func (s *Sink) unsealedName(ctx context.Context, e record.Evidence) (jsonName string, err error) {
	jsonName = RecordName(e.WorkflowID, e.RunID)
	for n := 2; ; n++ {
		b, err := s.store.Get(ctx, jsonName)
		if err != nil {
			return jsonName, unlessMissing(err)
		}
		var old record.Evidence
		if json.Unmarshal(b, &old) != nil || old.Seal == nil || old.Seal.Checkpoint || old.EndedAt.Equal(e.EndedAt) {
			return jsonName, nil
		}
		jsonName = RecordName(e.WorkflowID, fmt.Sprintf("%s-%d", e.RunID, n))
	}
}

// Load reads the evidence of the latest run of a workflow id; runs is how
// many runs of that id the sink holds, path where the record read is.
func (s *Sink) Load(workflowID string) (e record.Evidence, path string, runs int, err error) {
	ctx := context.Background()
	all, err := s.runNames(ctx, workflowID)
	if err != nil {
		return e, "", 0, err
	}
	name := all[len(all)-1]
	b, err := s.store.Get(ctx, name)
	if err != nil {
		return e, s.store.Location(name), len(all), err
	}
	return e, s.store.Location(name), len(all), json.Unmarshal(b, &e)
}
