//go:build integration

package testsuite_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/testsuite"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// restartBook restores for a few seconds (the server dies meanwhile), then
// runs the layers after it.
const restartBook = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: server-restart, version: 1}
spec:
  scope: application
  objectives: {rto: 10m}
  layers:
    storage:
      - id: restore
        action: http.check
        with: {url: "%[1]s/restore"}
        timeout: 2m
    workloads:
      - id: scale
        action: http.check
        with: {url: "%[1]s/scale"}
        timeout: 30s
    edge:
      - id: shift
        action: notify.webhook
        with: {url: "%[1]s/shift", text: "{runbook}: traffic moved"}
        timeout: 30s
`

// sideEffects counts the requests each path received; /restore answers
// after restoreTakes.
type sideEffects struct {
	mu      sync.Mutex
	hits    map[string]int
	started chan struct{}
}

const restoreTakes = 7 * time.Second // below http.check's 10s request timeout

func (s *sideEffects) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.URL.Path]++
	first := r.URL.Path == "/restore" && s.hits[r.URL.Path] == 1
	s.mu.Unlock()
	if first {
		close(s.started)
		time.Sleep(restoreTakes)
	}
	fmt.Fprintln(w, "ok")
}

func (s *sideEffects) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.hits {
		out[k] = v
	}
	return out
}

// TestTemporalServerKilledMidRestore (DESIGN §8): the Temporal server is
// killed with SIGKILL while a step runs and started again on the same
// SQLite file; the worker process and the run carry on: the run finishes,
// no step's side effect happens twice, and the evidence is complete.
func TestTemporalServerKilledMidRestore(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	address, db := "127.0.0.1:"+freePort(t), filepath.Join(t.TempDir(), "temporal.db")

	effects := &sideEffects{hits: map[string]int{}, started: make(chan struct{})}
	svc := httptest.NewServer(effects)
	defer svc.Close()
	cat, evidenceDir := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(cat, "server-restart.yaml"), []byte(fmt.Sprintf(restartBook, svc.URL)), 0o644))

	server := startDevServer(t, address, db)
	bin := buildLifeboat(t)
	w := exec.Command(bin, "worker")
	w.Env = append(os.Environ(), "LIFEBOAT_ADDRESS="+address, "LIFEBOAT_TASK_QUEUE=restart-test",
		"LIFEBOAT_CATALOG="+cat, "LIFEBOAT_EVIDENCE_DIR="+evidenceDir)
	w.Stdout, w.Stderr = os.Stderr, os.Stderr
	require.NoError(t, w.Start())
	stopWorker := sync.OnceFunc(func() { _ = w.Process.Signal(syscall.SIGTERM); _ = w.Wait() })
	t.Cleanup(stopWorker)

	c, err := client.Dial(client.Options{HostPort: address, Logger: quiet{}})
	require.NoError(t, err)
	defer c.Close()
	st := starter.New(c, "restart-test")
	run, err := st.Start(ctx, workflows.Request{Runbook: "server-restart", Mode: workflows.ModeFailover, RequestedBy: "alice", Reason: "server restart test"})
	require.NoError(t, err)

	select {
	case <-effects.started:
	case <-time.After(60 * time.Second):
		t.Fatal("the restore step never started")
	}
	server.Kill()
	killed := time.Now()
	time.Sleep(3 * time.Second) // down for a while: the worker's polls fail meanwhile
	startDevServer(t, address, db)
	t.Logf("server killed and back after %s, while the restore step was still running", time.Since(killed).Round(time.Millisecond))

	ev, err := st.Wait(ctx, run.WorkflowID)
	require.NoError(t, err)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome, "%+v", ev.FailedChecks)
	var ids []string
	for _, s := range ev.Steps {
		ids = append(ids, s.ID)
		assert.Equal(t, workflows.StateSucceeded, s.State, s.ID)
		assert.Equal(t, 1, s.Attempts, "step %s ran more than once", s.ID)
		assert.NotNil(t, s.Started, s.ID)
		assert.NotNil(t, s.Ended, s.ID)
	}
	sort.Strings(ids)
	assert.Equal(t, []string{"restore", "scale", "shift"}, ids, "every step is in the evidence")
	assert.Equal(t, map[string]int{"/restore": 1, "/scale": 1, "/shift": 1}, effects.counts(), "no side effect is duplicated")
	_, err = os.Stat(storedEvidence(t, evidenceDir, run.WorkflowID))
	assert.NoError(t, err, "the worker stored the evidence")
	stopWorker() // before the server it polls goes away
}

// startDevServer starts the dev server on address with its state in db; the
// test stops it at the end.
func startDevServer(t *testing.T, address, db string) *testsuite.DevServer {
	t.Helper()
	srv, err := testsuite.StartTemporal(context.Background(), testsuite.DevOptions{HostPort: address, DBFile: db, Log: os.Stderr})
	require.NoError(t, err, "CI=%v", testsuite.InCI())
	t.Cleanup(srv.Kill)
	return srv
}
