// Package evidence implements evidence.store: the run's Evidence written as
// JSON and Markdown to a directory outside the cluster being restored.
package evidence

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// StoreInput is what the workflow sends to evidence.store.
type StoreInput struct {
	runbooks.StepInput
	Evidence runbooks.Evidence `json:"evidence"`
}

// DirSink writes evidence files into a directory.
type DirSink struct{ dir string }

// NewDirSink returns a sink writing into dir (created on first use).
func NewDirSink(dir string) *DirSink { return &DirSink{dir: dir} }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// Paths returns the JSON and Markdown paths of a workflow's evidence.
func (s *DirSink) Paths(workflowID string) (jsonPath, mdPath string) {
	base := filepath.Join(s.dir, unsafeName.ReplaceAllString(workflowID, "_"))
	return base + ".json", base + ".md"
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
	jsonPath, mdPath := s.Paths(e.WorkflowID)
	pretty, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return runbooks.StepResult{}, err
	}
	if err := writeAtomic(jsonPath, append(pretty, '\n')); err != nil {
		return runbooks.StepResult{}, err
	}
	if err := writeAtomic(mdPath, []byte(e.Markdown())); err != nil {
		return runbooks.StepResult{}, err
	}
	return runbooks.StepResult{Summary: "stored " + jsonPath, Outputs: map[string]any{"json": jsonPath, "markdown": mdPath}}, nil
}

// Load reads a stored evidence JSON file.
func (s *DirSink) Load(workflowID string) (runbooks.Evidence, error) {
	p, _ := s.Paths(workflowID)
	var e runbooks.Evidence
	b, err := os.ReadFile(p)
	if err != nil {
		return e, err
	}
	return e, json.Unmarshal(b, &e)
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
