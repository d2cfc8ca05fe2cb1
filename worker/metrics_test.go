package worker_test

import (
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/lifeboat-dr/lifeboat/worker"
)

func TestMetricsExposition(t *testing.T) {
	m := worker.NewMetrics()
	defer m.Close()
	h := m.Handler().WithTags(map[string]string{"namespace": "default"})
	h.WithTags(map[string]string{"operation": "Poll"}).Counter("temporal_request").Inc(2)
	h.WithTags(map[string]string{"operation": "Start"}).Counter("temporal_request").Inc(1)
	h.WithTags(map[string]string{"runbook": "case-management-region-failover"}).Counter("lifeboat_runs_finished").Inc(1)
	h.Timer("temporal_workflow_task_execution_latency").Record(30 * time.Millisecond)
	run := h.WithTags(map[string]string{"workflow_id": `a"b`})
	run.Gauge("lifeboat_rto_remaining_seconds").Update(1800)
	run2 := h.WithTags(map[string]string{"workflow_id": "gone"})
	run2.Gauge("lifeboat_rto_remaining_seconds").Update(60)
	run2.Gauge("lifeboat_rto_remaining_seconds").Update(math.NaN())

	var out string
	assert.Eventually(t, func() bool { // tally reports every 250ms
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		out = rec.Body.String()
		return strings.Contains(out, `operation="Start"} 1`)
	}, 5*time.Second, 50*time.Millisecond)
	for _, want := range []string{
		"# TYPE temporal_request_total counter\n",
		`temporal_request_total{namespace="default",operation="Poll"} 2` + "\n",
		`temporal_request_total{namespace="default",operation="Start"} 1` + "\n",
		"# TYPE temporal_workflow_task_execution_latency_seconds histogram\n",
		`temporal_workflow_task_execution_latency_seconds_bucket{namespace="default",le="0.025"} 0` + "\n",
		`temporal_workflow_task_execution_latency_seconds_bucket{namespace="default",le="0.05"} 1` + "\n",
		`temporal_workflow_task_execution_latency_seconds_bucket{namespace="default",le="+Inf"} 1` + "\n",
		`temporal_workflow_task_execution_latency_seconds_count{namespace="default"} 1` + "\n",
		`lifeboat_rto_remaining_seconds{namespace="default",workflow_id="a\"b"} 1800` + "\n",
		`lifeboat_runs_finished_total{namespace="default",runbook="case-management-region-failover"} 1` + "\n",
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, `workflow_id="gone"`, "a NaN update drops the series")
}
