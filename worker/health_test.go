package worker_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/lifeboat-dr/lifeboat/worker"
)

// frontend is a client whose health check answers err.
type frontend struct {
	client.Client
	err error
}

func (f *frontend) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return &client.CheckHealthResponse{}, f.err
}

func probe(h http.Handler, path string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// The probes mean something: live once polling and until a fatal error,
// ready only while Temporal and the evidence location both answer.
func TestTheWorkersProbesSayWhatIsWrong(t *testing.T) {
	fe := &frontend{}
	cfg := worker.Defaults()
	cfg.EvidenceDir = t.TempDir()
	h := worker.NewHealth(fe, cfg)

	code, body := probe(h, "/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "has not started polling yet")
	h.Started()
	code, _ = probe(h, "/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, _ = probe(h, "/readyz")
	assert.Equal(t, http.StatusOK, code)

	fe.err = errors.New("connection refused")
	code, body = probe(h, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "the Temporal frontend does not answer: connection refused")
	code, _ = probe(h, "/healthz")
	assert.Equal(t, http.StatusOK, code, "a frontend outage does not restart the worker")

	fe.err = nil
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	cfg.EvidenceDir = filepath.Join(file, "evidence") // cannot be made
	h2 := worker.NewHealth(fe, cfg)
	h2.Started()
	code, body = probe(h2, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "the evidence location is not reachable")

	h.Fatal(errors.New("namespace not found"))
	code, body = probe(h, "/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "the worker stopped: namespace not found")
}
