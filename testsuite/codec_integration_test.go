//go:build integration

package testsuite_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/worker"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// TestEncryptedPayloads runs a drill with the AES codec on worker and
// starter: the run works as usual, the history stored on the server holds
// ciphertext only (search attributes apart), evidence and replay read it with
// the key, and `lifeboat codec-server` decrypts for the UI's origin only.
func TestEncryptedPayloads(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	keys := filepath.Join(t.TempDir(), "codec-keys")
	line, err := worker.NewKeyLine("k2026-11")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keys, []byte(line+"\n"), 0o600))
	r := setup(t)
	r.cfg.Codec.KeyFile = keys
	c, err := worker.Dial(r.cfg)
	require.NoError(t, err)
	defer c.Close()
	w := worker.New(c, r.cfg, worker.Registry(r.cfg), sdkworker.Options{})
	require.NoError(t, w.Start())
	defer w.Stop()
	dc, err := r.cfg.DataConverter()
	require.NoError(t, err)
	st := starter.New(c, r.cfg.Temporal.TaskQueue).WithDataConverter(dc).WithKeys(starter.KeyDir(r.cfg.Signatures.KeyDir))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const reason, comment = "secret-reason-7f3a", "approved-comment-9c1e"
	run, err := st.Start(ctx, workflows.Request{Runbook: "approve-by-update", Mode: workflows.ModeDrill, RequestedBy: "alice", Reason: reason})
	require.NoError(t, err)
	waitForState(t, st, run.WorkflowID, workflows.StateAwaitingApproval)
	_, err = st.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "announce", By: "bob", Comment: comment})
	require.NoError(t, err)
	ev, err := st.Wait(ctx, run.WorkflowID)
	require.NoError(t, err)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Equal(t, reason, ev.Reason)

	// What the server stores, read by a client without the key.
	raw, err := r.starter.HistoryJSON(ctx, run.WorkflowID)
	require.NoError(t, err)
	var doc any
	require.NoError(t, json.Unmarshal(raw, &doc))
	encrypted, plain := 0, 0
	walkPayloads(doc, "", func(path string, encoding string, data []byte) {
		if strings.Contains(path, "searchAttributes") {
			return // search attributes are never encoded: the UI lists by them
		}
		if encoding == worker.EncodingEncrypted {
			encrypted++
			return
		}
		plain++
		t.Errorf("unencrypted payload at %s (%s): %q", path, encoding, data)
	})
	assert.Greater(t, encrypted, 5, "input, activity inputs and results, update, result")
	assert.Zero(t, plain)
	assert.NotContains(t, string(raw), base64.StdEncoding.EncodeToString([]byte(reason))[:12])
	assert.Contains(t, string(raw), base64.StdEncoding.EncodeToString([]byte("k2026-11")), "the key id is recorded for rotation")

	// A failing step: its failure message and stack trace are encrypted
	// too, and the key itself is nowhere.
	failed, err := st.Start(ctx, workflows.Request{Runbook: "failing-drill", Mode: workflows.ModeDrill, RequestedBy: "alice", Reason: reason})
	require.NoError(t, err)
	fev, err := st.Wait(ctx, failed.WorkflowID)
	require.NoError(t, err)
	require.Contains(t, fev.Steps[0].Error, "answered 503", "the evidence, read with the key, says why")
	rawFailed, err := r.starter.HistoryJSON(ctx, failed.WorkflowID)
	require.NoError(t, err)
	assert.Contains(t, string(rawFailed), "EVENT_TYPE_ACTIVITY_TASK_FAILED")
	assert.NotContains(t, string(rawFailed), "answered 503", "failure messages are encrypted")
	assert.NotContains(t, string(rawFailed), "http.check: GET")
	_, key, _ := strings.Cut(line, "=")
	assert.NotContains(t, string(raw)+string(rawFailed), key, "the codec key")

	h, err := st.History(ctx, run.WorkflowID)
	require.NoError(t, err)
	assert.NoError(t, starter.Replay(h, dc), "replays with the key")
	fromHistory, err := starter.EvidenceFromHistory(h, dc)
	require.NoError(t, err)
	assert.Equal(t, reason, fromHistory.Reason)

	t.Run("codec server decrypts for the UI", func(t *testing.T) {
		bin := buildLifeboat(t)
		addr := "127.0.0.1:" + freePort(t)
		cmd := exec.Command(bin, "codec-server", "--listen", addr, "--ui-origin", "http://localhost:8233")
		cmd.Env = append(os.Environ(), "LIFEBOAT_CODEC_KEY_FILE="+keys)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		first, _ := bufio.NewReader(out).ReadString('\n')
		require.Contains(t, first, "codec server on http://"+addr)

		input := h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
		body, err := protojson.Marshal(input)
		require.NoError(t, err)
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", "default")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		var decoded commonpb.Payloads
		require.NoError(t, protojson.Unmarshal(b, &decoded))
		require.Len(t, decoded.Payloads, 1)
		assert.Contains(t, string(decoded.Payloads[0].Data), reason)

		pre, _ := http.NewRequest(http.MethodOptions, "http://"+addr+"/decode", nil)
		pre.Header.Set("Origin", "http://localhost:8233")
		presp, err := http.DefaultClient.Do(pre)
		require.NoError(t, err)
		presp.Body.Close()
		assert.Equal(t, "http://localhost:8233", presp.Header.Get("Access-Control-Allow-Origin"))
		assert.Contains(t, presp.Header.Get("Access-Control-Allow-Headers"), "X-Namespace")
	})

	t.Run("without the key, the payloads stay closed and the error names the key", func(t *testing.T) {
		other, err := worker.NewKeyLine("another-key")
		require.NoError(t, err)
		codec, err := worker.ParseKeys(other, "test")
		require.NoError(t, err)
		_, err = codec.Decode(h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads())
		require.Error(t, err)
		assert.Contains(t, err.Error(), `encrypted with key "k2026-11"`)
	})
}

// walkPayloads calls fn for every payload ({metadata, data}) in a history
// decoded from JSON, with its path, encoding and data.
func walkPayloads(v any, path string, fn func(path, encoding string, data []byte)) {
	switch x := v.(type) {
	case map[string]any:
		if md, ok := x["metadata"].(map[string]any); ok {
			if enc, ok := md["encoding"].(string); ok {
				e, _ := base64.StdEncoding.DecodeString(enc)
				d, _ := base64.StdEncoding.DecodeString(stringOf(x["data"]))
				fn(path, string(e), d)
				return
			}
		}
		for k, c := range x {
			walkPayloads(c, path+"."+k, fn)
		}
	case []any:
		for _, c := range x {
			walkPayloads(c, path+"[]", fn)
		}
	}
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}
