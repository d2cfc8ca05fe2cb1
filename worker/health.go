package worker

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
)

// Health answers a Kubernetes probe about a running worker.
//
//	/healthz (liveness): the worker is polling — it started and has not
//	  stopped on a fatal error (restarting the pod is the cure then).
//	/readyz (readiness): it could run a step and keep its record — the
//	  Temporal frontend answers a health check and the evidence location
//	  is reachable (an S3 bucket answers; a directory exists), each within
//	  5 s. A worker that is not ready still runs (it keeps polling); the
//	  probe tells the operator and the PodDisruptionBudget which replica
//	  is good.
type Health struct {
	c        client.Client
	evidence func(context.Context) error
	started  atomic.Bool
	fatal    atomic.Value // error
}

// NewHealth watches the worker that uses c and cfg's evidence location.
func NewHealth(c client.Client, cfg Config) *Health {
	h := &Health{c: c}
	st, err := cfg.EvidenceStore() // made once: a probe every 10 s reuses its client
	h.evidence = func(ctx context.Context) error {
		if err != nil {
			return err
		}
		return reachable(ctx, st)
	}
	return h
}

// Started marks the worker polling.
func (h *Health) Started() { h.started.Store(true) }

// Fatal records the error the worker stopped on (worker.Options.OnFatalError).
func (h *Health) Fatal(err error) { h.fatal.Store(err) }

// ServeHTTP answers /healthz and /readyz.
func (h *Health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var problem string
	switch r.URL.Path {
	case "/healthz":
		problem = h.live()
	case "/readyz":
		if problem = h.live(); problem == "" {
			problem = h.ready(r.Context())
		}
	default:
		http.NotFound(w, r)
		return
	}
	if problem != "" {
		http.Error(w, problem, http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (h *Health) live() string {
	if err, _ := h.fatal.Load().(error); err != nil {
		return "the worker stopped: " + err.Error()
	}
	if !h.started.Load() {
		return "the worker has not started polling yet"
	}
	return ""
}

func (h *Health) ready(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := h.c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return "the Temporal frontend does not answer: " + err.Error()
	}
	if err := h.evidence(ctx); err != nil {
		return "the evidence location is not reachable: " + err.Error()
	}
	return ""
}
