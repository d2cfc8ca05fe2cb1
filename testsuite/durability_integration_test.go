//go:build integration

package testsuite_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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

// temporalTarget is a Temporal server the durability tests run on: the
// dev server, or the rig's cluster (the server on PostgreSQL, mTLS).
type temporalTarget struct {
	name string
	// temporal is the config's temporal block for it (YAML), as a user
	// writes it.
	temporal string
	client   client.Client
	// restart kills the whole server with SIGKILL and starts it again on
	// its state.
	restart func(t *testing.T)
}

func devTarget(t *testing.T) temporalTarget {
	outer := t
	address, db := "127.0.0.1:"+freePort(t), filepath.Join(t.TempDir(), "temporal.db")
	current := startDevServer(t, address, db)
	c, err := client.Dial(client.Options{HostPort: address, Logger: quiet{}})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return temporalTarget{name: "dev server", temporal: fmt.Sprintf("{address: %q, namespace: default}", address), client: c,
		restart: func(*testing.T) {
			current.Kill()
			time.Sleep(3 * time.Second)                  // down for a while: the workers' polls fail meanwhile
			current = startDevServer(outer, address, db) // stopped with the target, not the subtest
		}}
}

// clusterTarget starts the rig's Temporal cluster and prepares its
// namespace with `lifeboat setup`, as the README's "Run it for real" does.
func clusterTarget(t *testing.T) temporalTarget {
	ctx := context.Background()
	cl, err := testsuite.StartTemporalCluster(ctx, t.TempDir(), os.Stderr)
	require.NoError(t, err, "CI=%v", testsuite.InCI())
	t.Cleanup(cl.Stop)
	target := temporalTarget{name: "cluster",
		temporal: fmt.Sprintf("{address: %q, namespace: %s, tls: {cert: %q, key: %q, ca: %q, serverName: %s}}",
			cl.HostPort, cl.Namespace, cl.ClientCert, cl.ClientKey, cl.CA, cl.ServerName),
		restart: func(t *testing.T) {
			cl.Kill()
			time.Sleep(3 * time.Second)
			require.NoError(t, cl.Restart(ctx))
		}}
	cfg := writeWorkerConfig(t, target, "setup", t.TempDir(), t.TempDir())
	out, err := exec.Command(buildLifeboat(t), "setup", "--config", cfg).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "namespace default: added search attributes LifeboatLayer, LifeboatMode, LifeboatRTOBreached, LifeboatRunbook, LifeboatState")
	out, err = exec.Command(buildLifeboat(t), "setup", "--config", cfg).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "already has lifeboat's search attributes")
	target.client, err = cl.Dial(ctx, cl.Namespace)
	require.NoError(t, err)
	t.Cleanup(target.client.Close)
	return target
}

// writeWorkerConfig writes a worker's config for the target.
func writeWorkerConfig(t *testing.T, target temporalTarget, queue, catalog, evidenceDir string) string {
	p := filepath.Join(t.TempDir(), "lifeboat.yaml")
	require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf("temporal: %s\ncatalog: [%q]\nevidenceDir: %q\n",
		strings.Replace(target.temporal, "namespace:", fmt.Sprintf("taskQueue: %s, namespace:", queue), 1), catalog, evidenceDir)), 0o644))
	return p
}

// workerProc is a `lifeboat worker` process.
type workerProc struct {
	cmd  *exec.Cmd
	stop func()
}

func startWorkerProc(t *testing.T, bin, config string) *workerProc {
	cmd := exec.Command(bin, "worker", "--config", config)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	w := &workerProc{cmd: cmd}
	w.stop = sync.OnceFunc(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	t.Cleanup(w.stop)
	return w
}

// TestDurabilityOnTheDevServerAndACluster: what must survive, on the dev
// server and on a real cluster (PostgreSQL, mTLS): a worker killed with
// SIGKILL in the middle of a step (the other worker finishes the run),
// the whole server killed mid-restore, the worker replaced mid-run by a
// newer build.
func TestDurabilityOnTheDevServerAndACluster(t *testing.T) {
	t.Parallel()
	for _, target := range []struct {
		name  string
		start func(*testing.T) temporalTarget
	}{{"dev server", devTarget}, {"cluster", clusterTarget}} {
		t.Run(target.name, func(t *testing.T) {
			tg := target.start(t)
			t.Run("a worker killed mid-step", func(t *testing.T) { workerKilledMidStep(t, tg) })
			t.Run("the server killed mid-restore", func(t *testing.T) { serverKilledMidRestore(t, tg) })
			t.Run("a worker upgraded mid-run", func(t *testing.T) { workerUpgradedMidRun(t, tg) })
		})
	}
}

// killBook announces, then "restores" (a GET the test holds open until the
// worker running it dies), then moves traffic.
const killBook = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: worker-killed, version: 1}
spec:
  scope: application
  objectives: {rto: 10m}
  layers:
    network:
      - id: announce
        action: notify.webhook
        with: {url: "%[1]s/announce", text: "{runbook}: failover started"}
        timeout: 30s
    storage:
      - id: restore
        action: http.check
        with: {url: "%[1]s/restore"}
        timeout: 8s
        retry: {attempts: 3, backoff: 1s}
    edge:
      - id: shift
        action: notify.webhook
        with: {url: "%[1]s/shift", text: "{runbook}: traffic moved"}
        timeout: 30s
`

// heldRestore serves killBook's webhooks and its restore, whose first
// request it holds open until the worker that sent it goes away.
type heldRestore struct {
	svc     *httptest.Server
	mu      sync.Mutex
	hits    map[string]int
	holding chan struct{} // closed when the first restore request arrives
}

func holdRestore(t *testing.T) *heldRestore {
	h := &heldRestore{hits: map[string]int{}, holding: make(chan struct{})}
	h.svc = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.hits[r.URL.Path]++
		first := r.URL.Path == "/restore" && h.hits[r.URL.Path] == 1
		h.mu.Unlock()
		if first {
			close(h.holding)
			<-r.Context().Done() // held until the worker that sent it stops or dies
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(h.svc.Close)
	return h
}

// catalog writes killBook against this server into a new catalog.
func (h *heldRestore) catalog(t *testing.T) string {
	cat := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(cat, "worker-killed.yaml"), []byte(fmt.Sprintf(killBook, h.svc.URL)), 0o644))
	return cat
}

func (h *heldRestore) counts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.hits)
}

// workerKilledMidStep: two workers on one task queue; the one running the
// restore is killed with SIGKILL while its request is open; the step is
// retried on the other when its attempt times out, and the run finishes
// there: each webhook (a side effect) sent once, the restore's read twice.
func workerKilledMidStep(t *testing.T, tg temporalTarget) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	held := holdRestore(t)
	cat := held.catalog(t)
	queue := "killed-" + strings.ReplaceAll(tg.name, " ", "-")
	cfg := writeWorkerConfig(t, tg, queue, cat, t.TempDir())
	bin := buildLifeboat(t)
	workers := []*workerProc{startWorkerProc(t, bin, cfg), startWorkerProc(t, bin, cfg)}

	st := starter.New(tg.client, queue)
	run, err := st.Start(ctx, workflows.Request{Runbook: "worker-killed", Mode: workflows.ModeFailover, RequestedBy: "alice", Reason: "worker kill test"})
	require.NoError(t, err)
	select {
	case <-held.holding:
	case <-time.After(90 * time.Second):
		t.Fatal("the restore step never started")
	}
	// The worker running it: the pending activity's last worker identity
	// (the SDK's "PID@HOST@").
	var pid int
	for deadline := time.Now().Add(20 * time.Second); pid == 0; time.Sleep(200 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "no pending activity names its worker")
		d, err := tg.client.DescribeWorkflowExecution(ctx, run.WorkflowID, "")
		require.NoError(t, err)
		for _, a := range d.GetPendingActivities() {
			if a.GetActivityType().GetName() == "http.check" && a.GetLastWorkerIdentity() != "" {
				pid, _ = strconv.Atoi(strings.SplitN(a.GetLastWorkerIdentity(), "@", 2)[0])
			}
		}
	}
	var killed, other *workerProc
	for i, w := range workers {
		if w.cmd.Process.Pid == pid {
			killed, other = w, workers[1-i]
		}
	}
	require.NotNil(t, killed, "the restore runs on worker pid %d, not one of ours", pid)
	require.NoError(t, killed.cmd.Process.Signal(syscall.SIGKILL))
	_ = killed.cmd.Wait()

	ev, err := st.Wait(ctx, run.WorkflowID)
	require.NoError(t, err)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	restore := stepOf(t, ev, "restore")
	assert.Equal(t, 2, restore.Attempts, "the killed attempt timed out and the other worker's succeeded")
	assert.Equal(t, map[string]int{"/announce": 1, "/restore": 2, "/shift": 1}, held.counts(), "each webhook sent once; the restore's read twice")
	h, err := st.History(ctx, run.WorkflowID)
	require.NoError(t, err)
	last := ""
	for _, e := range h.GetEvents() {
		if a := e.GetActivityTaskStartedEventAttributes(); a != nil {
			last = a.GetIdentity()
		}
	}
	assert.True(t, strings.HasPrefix(last, strconv.Itoa(other.cmd.Process.Pid)+"@"), "the surviving worker finished the run (last activity by %s)", last)
	other.stop()
}

// olderBuild is a lifeboat from before the last GetVersion change that
// touches every run (one-authority): a run it starts takes the old branch,
// and this build must carry it to the end.
const olderBuild = "bf82784"

var older struct {
	once sync.Once
	bin  string
	err  error
}

// buildOlder builds olderBuild from this repository's history (git
// archive: no work tree is touched).
func buildOlder(t *testing.T) string {
	older.once.Do(func() {
		dir, err := os.MkdirTemp("", "lifeboat-older-")
		if err != nil {
			older.err = err
			return
		}
		// A shallow clone lacks the commit: deepen it from its origin first.
		has := exec.Command("git", "cat-file", "-e", olderBuild+"^{commit}")
		has.Dir = ".."
		if has.Run() != nil {
			fetch := exec.Command("git", "fetch", "--quiet", "--unshallow")
			fetch.Dir = ".."
			_ = fetch.Run()
		}
		archive := exec.Command("sh", "-c", "git archive "+olderBuild+" | tar -x -C "+dir)
		archive.Dir = ".."
		if out, err := archive.CombinedOutput(); err != nil {
			older.err = fmt.Errorf("commit %s is not in this clone's history (a shallow clone?): %v: %s", olderBuild, err, out)
			return
		}
		older.bin = filepath.Join(dir, "lifeboat")
		build := exec.Command("go", "build", "-o", older.bin, "./cmd/lifeboat")
		build.Dir = dir
		if out, err := build.CombinedOutput(); err != nil {
			older.err = fmt.Errorf("building lifeboat %s: %v: %s", olderBuild, err, out)
		}
	})
	require.NoError(t, older.err)
	return older.bin
}

// workerUpgradedMidRun: a run starts on an older build's worker; the
// worker is stopped (SIGTERM, as a rolling upgrade does) while a step
// runs and this build's worker takes over: it replays the older build's
// history without a non-determinism failure, retries the step, and
// finishes the run, each webhook sent once.
func workerUpgradedMidRun(t *testing.T, tg temporalTarget) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	held := holdRestore(t)
	cat := held.catalog(t)
	queue := "upgrade-" + strings.ReplaceAll(tg.name, " ", "-")
	cfg := writeWorkerConfig(t, tg, queue, cat, t.TempDir())
	old := startWorkerProc(t, buildOlder(t), cfg)

	st := starter.New(tg.client, queue)
	run, err := st.Start(ctx, workflows.Request{Runbook: "worker-killed", Mode: workflows.ModeFailover, RequestedBy: "alice", Reason: "upgrade test"})
	require.NoError(t, err)
	select {
	case <-held.holding:
	case <-time.After(90 * time.Second):
		t.Fatal("the restore step never started on the older worker")
	}
	old.stop()
	upgraded := startWorkerProc(t, buildLifeboat(t), cfg)

	ev, err := st.Wait(ctx, run.WorkflowID)
	require.NoError(t, err)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	hits := held.counts()
	assert.Equal(t, 1, hits["/announce"], "the older build's webhook is not sent again")
	assert.Equal(t, 1, hits["/shift"])
	h, err := st.History(ctx, run.WorkflowID)
	require.NoError(t, err)
	by := map[string]bool{}
	for _, e := range h.GetEvents() {
		require.Nil(t, e.GetWorkflowTaskFailedEventAttributes(), "a workflow task failed (non-determinism?): %v", e.GetWorkflowTaskFailedEventAttributes())
		if a := e.GetWorkflowTaskCompletedEventAttributes(); a != nil {
			by[strings.SplitN(a.GetIdentity(), "@", 2)[0]] = true
		}
	}
	assert.True(t, by[strconv.Itoa(old.cmd.Process.Pid)], "the older build ran workflow tasks: %v", by)
	assert.True(t, by[strconv.Itoa(upgraded.cmd.Process.Pid)], "this build finished the run: %v", by)
	upgraded.stop()
}

// serverKilledMidRestore: the whole Temporal server is killed with SIGKILL
// while a step runs and started again on its state; the worker process
// and the run carry on: the run finishes, no step's side effect happens
// twice, and the evidence is complete.
func serverKilledMidRestore(t *testing.T, tg temporalTarget) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	effects := &sideEffects{hits: map[string]int{}, started: make(chan struct{})}
	svc := httptest.NewServer(effects)
	defer svc.Close()
	cat, evidenceDir := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(cat, "server-restart.yaml"), []byte(fmt.Sprintf(restartBook, svc.URL)), 0o644))
	queue := "restart-" + strings.ReplaceAll(tg.name, " ", "-")
	w := startWorkerProc(t, buildLifeboat(t), writeWorkerConfig(t, tg, queue, cat, evidenceDir))

	st := starter.New(tg.client, queue)
	run, err := st.Start(ctx, workflows.Request{Runbook: "server-restart", Mode: workflows.ModeFailover, RequestedBy: "alice", Reason: "server restart test"})
	require.NoError(t, err)
	select {
	case <-effects.started:
	case <-time.After(60 * time.Second):
		t.Fatal("the restore step never started")
	}
	killed := time.Now()
	tg.restart(t)
	t.Logf("%s killed and back after %s, while the restore step was still running", tg.name, time.Since(killed).Round(time.Millisecond))

	ev, err := st.Wait(ctx, run.WorkflowID)
	require.NoError(t, err)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome, "%+v", ev.FailedChecks)
	var ids []string
	for _, s := range ev.Steps {
		ids = append(ids, s.ID)
		assert.Equal(t, workflows.StateSucceeded, s.State, s.ID)
		assert.Equal(t, 1, s.Attempts, "step %s ran more than once", s.ID)
	}
	sort.Strings(ids)
	assert.Equal(t, []string{"restore", "scale", "shift"}, ids, "every step is in the evidence")
	assert.Equal(t, map[string]int{"/restore": 1, "/scale": 1, "/shift": 1}, effects.counts(), "no side effect is duplicated")
	_, err = os.Stat(storedEvidence(t, evidenceDir, run.WorkflowID))
	assert.NoError(t, err, "the worker stored the evidence")
	w.stop() // before the server it polls goes away
}

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

// startDevServer starts the dev server on address with its state in db; the
// test stops it at the end.
func startDevServer(t *testing.T, address, db string) *testsuite.DevServer {
	t.Helper()
	srv, err := testsuite.StartTemporal(context.Background(), testsuite.DevOptions{HostPort: address, DBFile: db, Log: os.Stderr})
	require.NoError(t, err, "CI=%v", testsuite.InCI())
	t.Cleanup(srv.Kill)
	return srv
}
