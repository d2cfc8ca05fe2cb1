//go:build integration

package testsuite_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// TestLifeboatDev runs `lifeboat dev` as a user would (on spare ports) and
// checks the UI answers, the worker serves the example catalog, the search
// attributes are registered (the README's UI queries work), and the worker's
// /metrics carries the SDK's metrics and lifeboat's own.
func TestLifeboatDev(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	metricsAddr := "127.0.0.1:" + freePort(t)
	dev := startLifeboatDev(t, "../runbooks/examples", "LIFEBOAT_METRICS_ADDR="+metricsAddr)
	port, uiPort, state := dev.port, dev.uiPort, dev.state
	ctx := context.Background()
	_, err := os.Stat(filepath.Join(state, "temporal.db"))
	assert.NoError(t, err, "the dev server persists to SQLite under --state")
	resp, err := http.Get("http://127.0.0.1:" + uiPort + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the UI answers")

	c, err := client.Dial(client.Options{HostPort: "127.0.0.1:" + port, Logger: quiet{}})
	require.NoError(t, err)
	defer c.Close()
	st := starter.New(c, "lifeboat")
	run, err := st.Start(ctx, workflows.Request{Runbook: "warm-standby-failover", Mode: workflows.ModeTabletop, RequestedBy: "alice"})
	require.NoError(t, err)
	query := `LifeboatState = "awaiting-ack" AND LifeboatRunbook = "warm-standby-failover" AND LifeboatMode = "tabletop"`
	deadline := time.Now().Add(30 * time.Second)
	var found bool
	for !found && time.Now().Before(deadline) {
		res, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		require.NoError(t, err, "search attributes must be registered by lifeboat dev")
		for _, e := range res.Executions {
			found = found || e.Execution.WorkflowId == run.WorkflowID
		}
		time.Sleep(200 * time.Millisecond)
	}
	assert.True(t, found, "the run is listed by the UI query %s", query)

	// tally reports the SDK's metrics every 250ms: scrape until they are in.
	var open string
	require.Eventually(t, func() bool {
		open = scrape(t, metricsAddr)
		return sample(open, "temporal_workflow_task_execution_latency_seconds_count", nil) != ""
	}, 10*time.Second, 100*time.Millisecond)
	labels := map[string]string{"mode": "tabletop", "runbook": "warm-standby-failover", "workflow_id": run.WorkflowID}
	assert.Equal(t, "1", sample(open, "lifeboat_run_state", with(labels, "state", "awaiting-ack")), "runs by state")
	assert.Equal(t, "0", sample(open, "lifeboat_approvals_waiting", labels))
	remaining, err := strconv.ParseFloat(sample(open, "lifeboat_rto_remaining_seconds", labels), 64)
	require.NoError(t, err, "RTO remaining per run")
	assert.InDelta(t, 30*60, remaining, 120, "warm-standby-failover's RTO is 30m")
	assert.NotEmpty(t, sample(open, "temporal_workflow_task_execution_latency_seconds_count", nil), "the SDK's metrics")
	assert.NotEmpty(t, sample(open, "temporal_request_total", nil), "the SDK's metrics")

	_, err = st.Abort(ctx, run.WorkflowID, workflows.Abort{By: "alice", Reason: "test over"})
	require.NoError(t, err)
	_, err = st.Wait(ctx, run.WorkflowID)
	require.NoError(t, err)
	book := map[string]string{"mode": "tabletop", "runbook": "warm-standby-failover"}
	var ended string
	require.Eventually(t, func() bool {
		ended = scrape(t, metricsAddr)
		// tally registers a counter at 0, then reports its increments
		return sample(ended, "lifeboat_runs_finished_total", with(book, "outcome", "aborted")) == "1"
	}, 10*time.Second, 100*time.Millisecond, "the finished run is counted once")
	assert.NotContains(t, ended, `workflow_id="`+run.WorkflowID+`"`, "a finished run's gauges are dropped")
	assert.NotEmpty(t, sample(ended, "lifeboat_step_duration_seconds_count", with(with(book, "action", "manual.task"), "outcome", "aborted")),
		"step duration by action and outcome")
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for mk, mv := range m {
		out[mk] = mv
	}
	return out
}

// sample is the value of the first series of name whose labels include want
// ("" when there is none).
func sample(exposition, name string, want map[string]string) string {
	for _, line := range strings.Split(exposition, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		labels := map[string]string{}
		if rest[0] == '{' {
			end := strings.LastIndex(rest, "}")
			for _, kv := range regexp.MustCompile(`([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(rest[1:end], -1) {
				labels[kv[1]] = kv[2]
			}
			rest = rest[end+1:]
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if match {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// scrape reads the worker's /metrics.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// lifeboatDev is a `lifeboat dev` started by a test.
type lifeboatDev struct {
	port, uiPort, state, catalog string
	// log is everything the dev server and its worker printed.
	log *syncBuffer
}

// startLifeboatDev runs `lifeboat dev` as a user would, on spare ports, with
// the given catalog, until the test ends.
func startLifeboatDev(t *testing.T, catalog string, env ...string) lifeboatDev {
	t.Helper()
	bin := buildLifeboat(t)
	d := lifeboatDev{port: freePort(t), uiPort: freePort(t), state: t.TempDir(), catalog: catalog, log: &syncBuffer{}}
	runDev(t, "", d.log, env, bin, "dev", "--port", d.port, "--ui-port", d.uiPort, "--state", d.state, "--catalog", catalog)
	return d
}

// runDev runs a `lifeboat dev` command (args[0] and the rest) in dir ("": here)
// until the test ends, and returns once its worker is up; its output goes to
// the test log and to log (when not nil).
func runDev(t *testing.T, dir string, log io.Writer, env []string, args ...string) {
	t.Helper()
	if log == nil {
		log = io.Discard
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = io.MultiWriter(os.Stderr, log)
	require.NoError(t, cmd.Start())
	ready := make(chan struct{})
	var exitErr error
	exited := make(chan struct{}) // closed once its output is read to the end and it has exited
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			t.Log(sc.Text())
			fmt.Fprintln(log, sc.Text())
			if strings.HasPrefix(sc.Text(), "worker on ") {
				close(ready)
			}
		}
		exitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() { cancel(); <-exited })
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("lifeboat dev ended before its worker started (%v); its log:\n%s", exitErr, log)
	case <-time.After(3 * time.Minute):
		t.Fatal("lifeboat dev did not start its worker")
	}
}

// freePort is a port nothing listens on, never one it returned before in
// this process: the kernel may offer a just-closed port again, and two of a
// test's servers (lifeboat dev's frontend and its metrics) once got the same.
func freePort(t *testing.T) string {
	given.Lock()
	defer given.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !given.ports[port] {
			given.ports[port] = true
			return fmt.Sprint(port)
		}
	}
}

// given holds the ports freePort returned.
var given = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
