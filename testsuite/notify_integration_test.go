//go:build integration

package testsuite_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// receiver is a Slack-like incoming webhook that is down (503) for its
// first `down` posts.
type receiver struct {
	mu       sync.Mutex
	down     int
	attempts int
	texts    []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts++
	if rc.attempts <= rc.down {
		http.Error(w, "receiver down", http.StatusServiceUnavailable)
		return
	}
	var msg struct {
		Text string `json:"text"`
	}
	if req.Header.Get("Content-Type") != "application/json" || json.NewDecoder(req.Body).Decode(&msg) != nil || msg.Text == "" {
		http.Error(w, "invalid_payload", http.StatusBadRequest) // what Slack answers
		return
	}
	rc.texts = append(rc.texts, msg.Text)
	_, _ = w.Write([]byte("ok"))
}

func (rc *receiver) received() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.texts...)
}

// TestRunNotifiesAWebhookThatWasDown: with LIFEBOAT_NOTIFY_WEBHOOK set on
// the worker, a run posts "approval needed" and "run finished" on its own,
// retrying while the receiver answers 503; the webhook URL never reaches
// history.
func TestRunNotifiesAWebhookThatWasDown(t *testing.T) {
	rc := &receiver{down: 2}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	t.Setenv("LIFEBOAT_NOTIFY_WEBHOOK", hook.URL+"/services/T000/B000/secret-token")
	r := setup(t)
	r.startWorker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	run, err := r.starter.Start(ctx, workflows.Request{Runbook: "approve-by-update", Mode: workflows.ModeDrill, RequestedBy: "alice"})
	require.NoError(t, err)
	r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)
	deadline := time.Now().Add(30 * time.Second)
	for len(rc.received()) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	require.Len(t, rc.received(), 1, "approval needed, delivered after the receiver came back")
	assert.GreaterOrEqual(t, rc.attempts, 3, "two 503s, then delivered")
	first := rc.received()[0]
	assert.True(t, strings.HasPrefix(first, "*"+workflows.NotifyApprovalNeeded+"*"), first)
	assert.Contains(t, first, "lifeboat approve "+run.WorkflowID+" announce --as NAME")
	assert.Contains(t, first, "<http://localhost:8233/namespaces/default/workflows/"+run.WorkflowID+"|Open ")

	_, err = r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "announce", By: "bob"})
	require.NoError(t, err)
	ev, err := r.starter.Wait(ctx, run.WorkflowID)
	require.NoError(t, err)
	got := rc.received()
	require.Len(t, got, 2, "%q", got)
	assert.True(t, strings.HasPrefix(got[1], "*"+workflows.NotifyRunFinished+"*"), got[1])
	assert.Contains(t, got[1], "succeeded in ")
	for _, e := range ev.Events {
		assert.NotEqual(t, "notify-failed", e.Kind, e.Text)
	}
	hist, err := r.starter.HistoryJSON(ctx, run.WorkflowID)
	require.NoError(t, err)
	assert.NotContains(t, string(hist), "secret-token", "the webhook URL stays on the worker")
	assert.Contains(t, string(hist), "LIFEBOAT_NOTIFY_WEBHOOK")
	h, err := r.starter.History(ctx, run.WorkflowID)
	require.NoError(t, err)
	assert.NoError(t, starter.Replay(h, nil), "a run with notifications replays")
	r.record(t, run.WorkflowID, "drill-notified-after-receiver-was-down")
}
