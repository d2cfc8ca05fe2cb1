//go:build integration

package testsuite_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/testsuite"
)

// lsp is a minimal Language Server Protocol client over a server's stdio:
// requests with responses, the server's own requests answered, diagnostics
// collected as the server publishes them.
type lsp struct {
	t     *testing.T
	in    io.Writer
	mu    sync.Mutex
	next  int
	calls map[int]chan json.RawMessage
	diags chan diagnostics
}

type diagnostics struct {
	URI         string `json:"uri"`
	Diagnostics []struct {
		Message string `json:"message"`
		Range   struct {
			Start struct{ Line, Character int } `json:"start"`
		} `json:"range"`
	} `json:"diagnostics"`
}

func startLSP(t *testing.T, ctx context.Context, command []string, settings map[string]any) *lsp {
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("yaml-language-server's stderr:\n%s", stderr.String())
		}
	})
	c := &lsp{t: t, in: in, calls: map[int]chan json.RawMessage{}, diags: make(chan diagnostics, 16)}
	go c.read(bufio.NewReader(out), settings)
	return c
}

func (c *lsp) send(msg map[string]any) {
	msg["jsonrpc"] = "2.0"
	b, err := json.Marshal(msg)
	require.NoError(c.t, err)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err = fmt.Fprintf(c.in, "Content-Length: %d\r\n\r\n%s", len(b), b)
	require.NoError(c.t, err)
}

// read dispatches the server's messages until its stdout closes.
func (c *lsp) read(r *bufio.Reader, settings map[string]any) {
	tp := textproto.NewReader(r)
	for {
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			return
		}
		n, _ := strconv.Atoi(h.Get("Content-Length"))
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		var m struct {
			ID     *json.RawMessage `json:"id"`
			Method string           `json:"method"`
			Params json.RawMessage  `json:"params"`
			Result json.RawMessage  `json:"result"`
		}
		if json.Unmarshal(body, &m) != nil {
			continue
		}
		switch {
		case m.ID != nil && m.Method != "": // the server asks: answer what a client would
			var result any
			if m.Method == "workspace/configuration" {
				var p struct{ Items []struct{ Section string } }
				_ = json.Unmarshal(m.Params, &p)
				answers := make([]any, len(p.Items))
				for i, it := range p.Items {
					answers[i] = settings[it.Section]
				}
				result = answers
			}
			c.send(map[string]any{"id": m.ID, "result": result})
		case m.ID != nil:
			id, _ := strconv.Atoi(string(*m.ID))
			c.mu.Lock()
			ch := c.calls[id]
			c.mu.Unlock()
			if ch != nil {
				ch <- m.Result
			}
		case m.Method == "textDocument/publishDiagnostics":
			var d diagnostics
			if json.Unmarshal(m.Params, &d) == nil {
				c.diags <- d
			}
		}
	}
}

// call sends a request and returns its result.
func (c *lsp) call(method string, params any) json.RawMessage {
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan json.RawMessage, 1)
	c.calls[id] = ch
	c.mu.Unlock()
	c.send(map[string]any{"id": id, "method": method, "params": params})
	select {
	case r := <-ch:
		return r
	case <-time.After(time.Minute):
		c.t.Fatalf("yaml-language-server did not answer %s within a minute", method)
		return nil
	}
}

func (c *lsp) notify(method string, params any) {
	c.send(map[string]any{"method": method, "params": params})
}

// diagnosticsFor waits for the server's diagnostics of uri that satisfy ok.
func (c *lsp) diagnosticsFor(uri string, ok func(diagnostics) bool) diagnostics {
	deadline := time.After(time.Minute)
	var last diagnostics
	for {
		select {
		case d := <-c.diags:
			if d.URI != uri {
				continue
			}
			if last = d; ok(d) {
				return d
			}
		case <-deadline:
			c.t.Fatalf("no diagnostics as expected for %s within a minute; last: %+v", uri, last)
		}
	}
}

// completion lists the labels (and their docs) offered at line:character.
func (c *lsp) completion(uri string, line, character int) map[string]string {
	raw := c.call("textDocument/completion", map[string]any{"textDocument": map[string]any{"uri": uri},
		"position": map[string]any{"line": line, "character": character}})
	type item struct {
		Label         string          `json:"label"`
		Documentation json.RawMessage `json:"documentation"`
	}
	var list struct{ Items []item }
	if json.Unmarshal(raw, &list) != nil || list.Items == nil {
		_ = json.Unmarshal(raw, &list.Items)
	}
	out := map[string]string{}
	for _, it := range list.Items {
		out[it.Label] = string(it.Documentation)
	}
	return out
}

// TestAnEditorCompletesAndChecksARunbook runs the language server of VS
// Code's YAML extension (yaml-language-server, the same one) on a new
// runbook that names the published schema on its first line, as the
// examples do: it offers the catalogue's actions after `action:`, the
// action's arguments under `with:`, and flags a misspelt action before the
// file is saved.
func TestAnEditorCompletesAndChecksARunbook(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	command, err := testsuite.EnsureYAMLLanguageServer(ctx, os.Stderr)
	require.NoError(t, err)
	repo, err := filepath.Abs("..")
	require.NoError(t, err)
	settings := map[string]any{"yaml": map[string]any{"validate": true, "completion": true, "hover": true,
		"schemaStore": map[string]any{"enable": false}}}
	c := startLSP(t, ctx, command, settings)
	c.call("initialize", map[string]any{"processId": os.Getpid(), "rootUri": "file://" + repo,
		"capabilities": map[string]any{
			"workspace":    map[string]any{"configuration": true},
			"textDocument": map[string]any{"completion": map[string]any{"completionItem": map[string]any{"documentationFormat": []string{"plaintext"}}}, "publishDiagnostics": map[string]any{}},
		}})
	c.notify("initialized", map[string]any{})
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": settings})

	// A new file beside the examples: its first line names the schema as theirs do.
	uri := "file://" + filepath.Join(repo, "runbooks", "examples", "my-first-runbook.yaml")
	head := `# yaml-language-server: $schema=../../schema/lifeboat-v1.json
apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: my-first-runbook, version: 1}
spec:
  scope: namespace
  objectives: {rto: 30m}
  layers:
    network:
      - id: net
`
	typo := head + "        action: terraform.aply\n        with: {dir: net}\n"
	c.notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{"uri": uri, "languageId": "yaml", "version": 1, "text": typo}})
	d := c.diagnosticsFor(uri, func(d diagnostics) bool { return len(d.Diagnostics) > 0 })
	actionLine := strings.Count(head, "\n")
	var flagged []string
	for _, p := range d.Diagnostics {
		flagged = append(flagged, fmt.Sprintf("%d: %s", p.Range.Start.Line, p.Message))
		if p.Range.Start.Line == actionLine {
			assert.Contains(t, p.Message, "terraform.apply", "the diagnostic names the valid values")
		}
	}
	assert.Contains(t, strings.Join(flagged, "\n"), fmt.Sprintf("%d: ", actionLine), "the misspelt action is flagged on its line: %v", flagged)

	fixed := head + "        action: terraform.apply\n        with: {dir: net}\n"
	c.notify("textDocument/didChange", map[string]any{"textDocument": map[string]any{"uri": uri, "version": 2},
		"contentChanges": []any{map[string]any{"text": fixed}}})
	c.diagnosticsFor(uri, func(d diagnostics) bool { return len(d.Diagnostics) == 0 })

	// Completion after `action: ` offers the catalogue with its docs.
	blank := head + "        action: \n"
	c.notify("textDocument/didChange", map[string]any{"textDocument": map[string]any{"uri": uri, "version": 3},
		"contentChanges": []any{map[string]any{"text": blank}}})
	items := c.completion(uri, actionLine, len("        action: "))
	require.Contains(t, items, "terraform.apply", "completion after action: offers the catalogue: %v", items)
	assert.Contains(t, items, "velero.restore")
	assert.Contains(t, items["terraform.apply"], "terraform init", "each action comes with its doc")

	// Under with:, the chosen action's arguments.
	args := head + "        action: velero.restore\n        with:\n          \n"
	c.notify("textDocument/didChange", map[string]any{"textDocument": map[string]any{"uri": uri, "version": 4},
		"contentChanges": []any{map[string]any{"text": args}}})
	items = c.completion(uri, actionLine+2, len("          "))
	for _, want := range []string{"target", "backup", "schedule", "namespaces"} {
		assert.Contains(t, items, want, "completion under with: offers velero.restore's arguments: %v", items)
	}
	assert.NotContains(t, items, "dir", "not another action's arguments")
}
