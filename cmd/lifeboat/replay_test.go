package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

func TestReplayPassesGoldenHistoriesAndFailsAnEditedOne(t *testing.T) {
	files, err := filepath.Glob("../../testsuite/histories/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden histories: %v", err)
	}
	if err := execute(append([]string{"replay"}, files...)...); err != nil {
		t.Fatalf("golden histories must replay: %v", err)
	}

	h, err := starter.LoadHistoryFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h.Events {
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() != "lifeboat.resolveRunbook" {
			a.ActivityType.Name = "renamed.action"
			break
		}
	}
	b, err := protojson.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "edited.json")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	err = execute("replay", files[0], bad)
	var ex exitError
	if !errors.As(err, &ex) || ex.code != 1 {
		t.Fatalf("an edited history must fail with exit 1, got %v", err)
	}
}

func TestDescribeRunNamesAnInlineRunbook(t *testing.T) {
	files, err := filepath.Glob("../../testsuite/histories/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden histories: %v", err)
	}
	h, err := starter.LoadHistoryFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	dc := converter.GetDefaultDataConverter()
	a := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
	var req workflows.Request
	if err := dc.FromPayloads(a.GetInput(), &req); err != nil {
		t.Fatal(err)
	}
	req.Runbook, req.InlineRunbook = "", "apiVersion: lifeboat/v1\nkind: Runbook\nmetadata: {name: pinned-book, version: 1}\nspec: {scope: region}\n"
	in, err := dc.ToPayloads(req)
	if err != nil {
		t.Fatal(err)
	}
	a.Input = in
	if got := describeRun(h, dc); !strings.HasPrefix(got, req.Mode+" of pinned-book (inline text), started ") {
		t.Fatalf("describeRun = %q", got)
	}
}
