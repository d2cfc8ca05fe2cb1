//go:build integration

package testsuite_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

// TestStatusFollowOnATerminal runs `lifeboat status RUN --follow` in a real
// pseudo-terminal on a running failover: it redraws the table, shows the
// approval command while the gate waits, and ends with the evidence once
// the approval lets the run finish. Then, not on a terminal, --output json
// follows as NDJSON.
func TestStatusFollowOnATerminal(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	r := setup(t)
	r.startWorker(t)
	bin := buildLifeboat(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := r.starter.Start(ctx, workflows.Request{Runbook: "approve-by-update", Mode: workflows.ModeFailover, RequestedBy: "alice", Reason: "follow test"})
	require.NoError(t, err)
	env := append(os.Environ(), "LIFEBOAT_ADDRESS="+r.cfg.Temporal.Address, "LIFEBOAT_TASK_QUEUE="+r.cfg.Temporal.TaskQueue, "TERM=xterm")

	cmd := exec.CommandContext(ctx, bin, "status", run.WorkflowID, "--follow")
	cmd.Env = env
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
	require.NoError(t, err)
	defer tty.Close()
	var screen syncBuffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&screen, tty); close(copied) }()

	const clear = "\x1b[H\x1b[2J"
	approve := "lifeboat approve " + run.WorkflowID + " announce --as NAME"
	deadline := time.Now().Add(30 * time.Second)
	for !(strings.Contains(screen.String(), approve) && strings.Count(screen.String(), clear) >= 2) {
		require.True(t, time.Now().Before(deadline), "no redrawn table with the approval command:\n%s", screen.String())
		time.Sleep(200 * time.Millisecond)
	}
	frames := strings.Split(screen.String(), clear)
	last := frames[len(frames)-1]
	assert.Contains(t, last, "RTO 10m: [", "the RTO budget bar")
	assert.Contains(t, last, "projected finish")
	assert.Regexp(t, `health\s+http\.check\s+succeeded\s+\S+\s+1`, last, "state, duration and attempts per step")
	assert.Regexp(t, `announce\s+notify\.webhook\s+awaiting-approval`, last)

	_, err = r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "announce", By: "bob"})
	require.NoError(t, err)
	require.NoError(t, cmd.Wait(), screen.String())
	select { // what the terminal still holds after the exit (the copy ends at EIO)
	case <-copied:
	case <-time.After(10 * time.Second):
	}
	out := screen.String()
	assert.Regexp(t, `announce\s+notify\.webhook\s+(running|succeeded)`, out, "redrawn as the step progresses")
	assert.Contains(t, out, "| Outcome | **succeeded** |", "the evidence at the end")

	// Not a terminal, JSON asked: one JSON object per line, the evidence last.
	cmd = exec.CommandContext(ctx, bin, "status", run.WorkflowID, "--follow", "--output", "json")
	cmd.Env = env
	ndjson, err := cmd.Output()
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(ndjson)), "\n")
	var ev map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &ev), string(ndjson))
	assert.Equal(t, "succeeded", ev["outcome"])
	for _, l := range lines {
		assert.True(t, json.Valid([]byte(l)), "not JSON: %s", l)
	}
}
