//go:build integration

package testsuite_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

// A finished run's evidence as one page (lifeboat evidence RUN -o html),
// opened in Chromium as an auditor would: the outcome first, the timeline
// picture drawn (a bar per step, the RTO deadline), the record below. The
// stored record has the same picture beside it, linked from its Markdown.
func TestTheEvidencePageShowsThePictureAndTheOutcome(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	r := setup(t)
	r.startWorker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run, err := r.starter.Start(ctx, workflows.Request{Runbook: "approve-by-update", Mode: workflows.ModeDrill, RequestedBy: "alice", Reason: "evidence page"})
	require.NoError(t, err)
	r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)
	_, err = r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "announce", By: "bob"})
	require.NoError(t, err)
	ev, err := r.starter.Wait(ctx, run.WorkflowID)
	require.NoError(t, err)
	require.Equal(t, "succeeded", ev.Outcome)

	stored := strings.TrimSuffix(storedEvidence(t, r.cfg.EvidenceDir, run.WorkflowID), ".json")
	svg, err := os.ReadFile(stored + ".svg")
	require.NoError(t, err, "the store writes the timeline beside the record")
	assert.Contains(t, string(svg), "RTO deadline")
	md, err := os.ReadFile(stored + ".md")
	require.NoError(t, err)
	assert.Contains(t, string(md), "]("+filepath.Base(stored)+".svg)", "the Markdown shows the picture beside it")

	page := filepath.Join(t.TempDir(), "evidence.html")
	cmd := exec.CommandContext(ctx, buildLifeboat(t), "evidence", run.WorkflowID, "-o", "html", "--out", page, "--from", "history")
	cmd.Env = append(os.Environ(), "LIFEBOAT_ADDRESS="+r.cfg.Temporal.Address, "LIFEBOAT_TASK_QUEUE="+r.cfg.Temporal.TaskQueue)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))

	b := openBrowser(ctx, t, "http://localhost:1", "evidence-page")
	require.NoError(t, b.Open("file://"+page))
	require.NoError(t, b.WaitText("approve-by-update drill: succeeded in", 30*time.Second))
	b.Shot("evidence page")
	bars, err := b.Eval(`document.querySelectorAll('#timeline svg rect[fill]:not([fill="none"]):not([fill="#ffffff"])').length`)
	require.NoError(t, err)
	steps := 0
	for _, s := range ev.Steps {
		if s.Started != nil {
			steps++
		}
	}
	assert.GreaterOrEqual(t, atoiOr(bars), steps, "a bar per step that ran is drawn")
	width, err := b.Eval(`Math.round(document.querySelector('#timeline svg').getBoundingClientRect().width)`)
	require.NoError(t, err)
	assert.Greater(t, atoiOr(width), 500, "the picture is laid out at its size, not collapsed")
	text := b.Text()
	assert.Contains(t, text, "RTO deadline", "the deadline is labelled in the picture")
	assert.Contains(t, text, "edge/announce", "the record's timeline table follows")
	assert.Contains(t, text, "Verifying this record")
}

// atoiOr reads a number the page returned (0 when it is not one).
func atoiOr(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}
