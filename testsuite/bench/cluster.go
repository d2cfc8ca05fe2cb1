package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/activities/evidence"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/testsuite"
	"github.com/lifeboat-dr/lifeboat/worker"
)

// clusterBar is the wall time of the drills against bare workflows running
// their steps' activities on the same real server (issue 26).
const clusterBar = 1.5

// cluster measures lifeboat on a real Temporal server (PostgreSQL, mTLS)
// with two workers: n concurrent 10-step drills (runs lost must be 0, wall
// time against n bare workflows), and evidence appends per second into a
// locked bucket from two sinks at once (one chain, no fork).
func (b *bench) cluster(ctx context.Context, n int) {
	dir, err := os.MkdirTemp("", "lifeboat-bench-cluster")
	check(err)
	defer os.RemoveAll(dir)
	cl, err := testsuite.StartTemporalCluster(ctx, filepath.Join(dir, "temporal"), io.Discard)
	check(err)
	defer cl.Stop()
	cfg := worker.Defaults()
	cfg.Temporal.Address, cfg.Temporal.Namespace, cfg.Temporal.TaskQueue = cl.HostPort, cl.Namespace, "lifeboat-bench-cluster"
	cfg.Temporal.TLS = worker.TLSConfig{Cert: cl.ClientCert, Key: cl.ClientKey, CA: cl.CA, ServerName: cl.ServerName}
	cfg.Catalog, cfg.EvidenceDir = []string{b.catalog}, filepath.Join(dir, "evidence")
	var clients []client.Client
	for range 2 { // two workers, each its own connection
		c, err := worker.Dial(cfg)
		check(err)
		defer c.Close()
		clients = append(clients, c)
	}
	_, err = starter.RegisterSearchAttributes(ctx, clients[0], cl.Namespace)
	check(err)
	for _, c := range clients {
		w := worker.New(c, cfg, activities.NewWithFuncs(map[string]activities.StepFunc{
			activities.HTTPCheck: b.noop, activities.EvidenceStore: b.noop}), sdkworker.Options{MaxConcurrentActivityExecutionSize: 400})
		w.RegisterWorkflowWithOptions(bareWorkflow, workflow.RegisterOptions{Name: "BareWorkflow"})
		w.RegisterActivityWithOptions(b.bareNoop, activity.RegisterOptions{Name: "noop"})
		check(w.Start())
		defer w.Stop()
	}
	st := starter.New(clients[0], cfg.Temporal.TaskQueue)
	req := b.request(book("concurrent", 10, "step-", true, false), "drill")
	// Warm up both paths (the first runs pay for caches and connections).
	run, err := st.Start(ctx, req)
	check(err)
	_, err = st.Wait(ctx, run.WorkflowID)
	check(err)
	bareRun := func() error {
		we, err := clients[0].ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: cfg.Temporal.TaskQueue}, "BareWorkflow", 10, "")
		if err != nil {
			return err
		}
		return we.Get(ctx, nil)
	}
	check(bareRun())

	t0 := time.Now()
	done := together(n, func() bool {
		run, err := st.Start(ctx, req)
		if err != nil {
			return false
		}
		ev, err := st.Wait(ctx, run.WorkflowID)
		return err == nil && ev.Outcome == "succeeded"
	})
	drills := time.Since(t0)
	report("cluster: concurrent drills", fmt.Sprintf("%d of %d drills of a 10-step runbook completed across two workers on the Temporal server %s (PostgreSQL, mTLS) in %s (ratio = runs lost)",
		done, n, testsuite.TemporalServerVersion, drills.Round(time.Second)), float64(n-done), 0)
	t0 = time.Now()
	together(n, func() bool { return bareRun() == nil })
	bare := time.Since(t0)
	report("cluster: wall time", fmt.Sprintf("%d drills took %s vs %d bare workflows running the same 10 activities %s, on the same server",
		n, drills.Round(100*time.Millisecond), n, bare.Round(100*time.Millisecond)), float64(drills)/float64(bare), clusterBar)

	b.evidenceAppends(ctx, dir)
}

// evidenceAppends stores 200 final records from two sinks at once into a
// bucket with Object Lock (versitygw), and verifies the chain: appends per
// second, and the positions must be 200 with no finding (no fork).
func (b *bench) evidenceAppends(ctx context.Context, dir string) {
	const n = 200
	store, err := testsuite.StartLockingObjectStore(ctx, filepath.Join(dir, "s3"), io.Discard)
	check(err)
	defer store.Stop()
	open := func() *evidence.S3Store {
		st, err := evidence.NewS3Store(evidence.S3Options{URL: "s3://" + testsuite.EvidenceBucket + "/bench", Endpoint: store.URL, RetentionDays: 1, Credentials: store.Credentials()})
		check(err)
		return st
	}
	sinks := []*evidence.Sink{evidence.NewSink(open()), evidence.NewSink(open())}
	at := time.Now()
	var next sync.Mutex
	i := 0
	t0 := time.Now()
	stored := together(n, func() bool {
		next.Lock()
		k := i
		i++
		next.Unlock()
		ev := record.Evidence{ID: fmt.Sprint("DR-", k), WorkflowID: fmt.Sprintf("lifeboat-bench-drill-%03d", k), RunID: "r",
			Runbook: record.RunbookRef{Name: "bench", Version: 1}, Mode: "drill", Outcome: "succeeded", StartedAt: at, EndedAt: at.Add(time.Duration(k) * time.Second)}
		_, err := sinks[k%2].Store(ctx, runbooks.StepInput{Args: map[string]any{"evidence": ev}})
		return err == nil
	})
	took := time.Since(t0)
	rep, err := evidence.VerifyStore(ctx, open(), nil)
	check(err)
	forks := 0
	for _, f := range rep.Findings {
		if f.Field != "signature" { // these sinks have no key: every record says so
			forks++
		}
	}
	fmt.Printf("%-34s %d records from two sinks at once into a locked bucket in %s: %.0f appends/s; %d chain positions\n",
		"cluster: evidence appends", stored, took.Round(time.Millisecond), float64(stored)/took.Seconds(), rep.Positions)
	report("cluster: evidence chain", fmt.Sprintf("%d stored, %d positions, %d chain findings (ratio = records not in one unforked chain)", stored, rep.Positions, forks),
		float64(n-rep.Positions+forks), 0)
}

// together runs f n times at once and counts the true results.
func together(n int, f func() bool) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if f() {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ok
}
