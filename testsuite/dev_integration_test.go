//go:build integration

package testsuite_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
// checks the UI answers, the worker serves the example catalog, and the
// search attributes are registered: the README's UI queries work.
func TestLifeboatDev(t *testing.T) {
	dev := startLifeboatDev(t, "../runbooks/examples")
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
	_, err = st.Abort(ctx, run.WorkflowID, workflows.Abort{By: "alice", Reason: "test over"})
	require.NoError(t, err)
}

// lifeboatDev is a `lifeboat dev` started by a test.
type lifeboatDev struct {
	port, uiPort, state string
}

// startLifeboatDev runs `lifeboat dev` as a user would, on spare ports, with
// the given catalog, until the test ends.
func startLifeboatDev(t *testing.T, catalog string) lifeboatDev {
	t.Helper()
	bin := buildLifeboat(t)
	d := lifeboatDev{port: freePort(t), uiPort: freePort(t), state: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "dev", "--port", d.port, "--ui-port", d.uiPort, "--state", d.state, "--catalog", catalog)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			t.Log(sc.Text())
			if strings.HasPrefix(sc.Text(), "worker on ") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(3 * time.Minute):
		t.Fatal("lifeboat dev did not start its worker")
	}
	return d
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
