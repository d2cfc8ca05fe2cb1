// Package evidence implements evidence.store: the run's Evidence written as
// JSON and Markdown to a directory outside the cluster being restored.
package evidence

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"
	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// StoreInput is what the workflow sends to evidence.store.
type StoreInput struct {
	runbooks.StepInput
	Evidence runbooks.Evidence `json:"evidence"`
}

// DirSink writes evidence files into a directory.
type DirSink struct {
	dir string
	key ssh.Signer
	mu  sync.Mutex // one store at a time: the chain has one head per runbook
}

// NewDirSink returns a sink writing into dir (created on first use).
func NewDirSink(dir string) *DirSink { return &DirSink{dir: dir} }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// Paths returns the JSON and Markdown paths of one run's evidence:
// WORKFLOWID.RUNID.json and .md, so a run started under a reused workflow id
// overwrites nothing.
func (s *DirSink) Paths(workflowID, runID string) (jsonPath, mdPath string) {
	base := filepath.Join(s.dir, safeName(workflowID))
	if runID != "" {
		base += "." + safeName(runID)
	}
	return base + ".json", base + ".md"
}

func safeName(id string) string { return unsafeName.ReplaceAllString(id, "_") }

// Runs returns the JSON evidence files of every run of a workflow id, the
// latest (by end time) last. Files written before evidence was keyed by
// run (WORKFLOWID.json) count as one more run.
func (s *DirSink) Runs(workflowID string) ([]string, error) {
	prefix := safeName(workflowID)
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	type found struct {
		path  string
		ended time.Time
	}
	var runs []found
	for _, e := range entries {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || !strings.HasSuffix(rest, ".json") {
			continue
		}
		rest = strings.TrimSuffix(rest, ".json")
		if rest != "" && (!strings.HasPrefix(rest, ".") || strings.Contains(rest[1:], ".")) {
			continue // another id, or a re-enactment comparison
		}
		p := filepath.Join(s.dir, name)
		var head struct {
			EndedAt time.Time `json:"endedAt"`
		}
		if b, err := os.ReadFile(p); err == nil {
			_ = json.Unmarshal(b, &head)
		}
		runs = append(runs, found{p, head.EndedAt})
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("no evidence of %s in %s: %w", workflowID, s.dir, fs.ErrNotExist)
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].ended.Before(runs[j].ended) })
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.path
	}
	return out, nil
}

// Store writes the evidence atomically (temp file + rename), overwriting any
// earlier checkpoint of the same run, so the files always hold a whole record.
func (s *DirSink) Store(_ context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	ev, ok := in.Args["evidence"]
	if !ok {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError("evidence.store: no evidence passed by the workflow", "InvalidArgument", nil)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	var e runbooks.Evidence
	if err := json.Unmarshal(b, &e); err != nil {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError("evidence.store: "+err.Error(), "InvalidArgument", nil)
	}
	if s.dir == "" {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError("evidence.store: the worker has no evidence directory: set evidenceDir in its config or LIFEBOAT_EVIDENCE_DIR", "ConfigError", nil)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return runbooks.StepResult{}, fmt.Errorf("evidence.store: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	jsonPath, mdPath := s.unsealedPaths(e)
	heads := s.heads() // read once: the link to the previous record, then the new head
	record, signature, err := s.seal(&e, jsonPath, heads)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	if err := writeAtomic(jsonPath, record); err != nil {
		return runbooks.StepResult{}, err
	}
	if signature != "" {
		if err := writeAtomic(jsonPath+".sig", []byte(signature)); err != nil {
			return runbooks.StepResult{}, err
		}
	}
	if err := writeAtomic(mdPath, []byte(e.Markdown())); err != nil {
		return runbooks.StepResult{}, err
	}
	out := runbooks.StepResult{Summary: "stored " + jsonPath, Outputs: map[string]any{"json": jsonPath, "markdown": mdPath}}
	if !e.Seal.Checkpoint {
		if err := s.advance(heads, e.Runbook.Name, jsonPath, record); err != nil {
			return runbooks.StepResult{}, err
		}
		// The final seal and signature go to history too: evidence rebuilt
		// from history is this very file, and verifies.
		out.Outputs["seal"], out.Outputs["signature"] = e.Seal, signature
	}
	return out, nil
}

// unsealedPaths are the files a store of e writes: its run's paths, unless
// they hold the final record of another ending of the same run (a Temporal
// reset of a finished run keeps its first run id, so its evidence id, and
// ends again). A final record is never overwritten by another ending: the
// new one goes beside it (WORKFLOWID.RUNID-2.json, -3, …) and chains after
// it like any later record. A retried store of the same ending (the same
// end time) rewrites its own file.
func (s *DirSink) unsealedPaths(e runbooks.Evidence) (jsonPath, mdPath string) {
	jsonPath, mdPath = s.Paths(e.WorkflowID, e.RunID)
	for n := 2; ; n++ {
		b, err := os.ReadFile(jsonPath)
		if err != nil {
			return jsonPath, mdPath
		}
		var old runbooks.Evidence
		if json.Unmarshal(b, &old) != nil || old.Seal == nil || old.Seal.Checkpoint || old.EndedAt.Equal(e.EndedAt) {
			return jsonPath, mdPath
		}
		jsonPath, mdPath = s.Paths(e.WorkflowID, fmt.Sprintf("%s-%d", e.RunID, n))
	}
}

// Load reads the evidence of the latest run of a workflow id; runs is how
// many runs of that id the sink holds, path the file read.
func (s *DirSink) Load(workflowID string) (e runbooks.Evidence, path string, runs int, err error) {
	all, err := s.Runs(workflowID)
	if err != nil {
		return e, "", 0, err
	}
	path = all[len(all)-1]
	b, err := os.ReadFile(path)
	if err != nil {
		return e, path, len(all), err
	}
	return e, path, len(all), json.Unmarshal(b, &e)
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".evidence-*")
	if err != nil {
		return fmt.Errorf("evidence.store: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("evidence.store: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
