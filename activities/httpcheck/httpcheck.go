// Package httpcheck implements http.check: one HTTP request that must answer
// with the expected status and, optionally, body text.
package httpcheck

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/activities/secrets"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Args are http.check's arguments.
type Args struct {
	URL          string            `json:"url"`
	Method       string            `json:"method"`
	ExpectStatus int               `json:"expectStatus"`
	ExpectBody   string            `json:"expectBody"`
	Headers      map[string]string `json:"headers"`
	// HeadersEnv and HeadersFile take header values (an Authorization
	// token) from the worker's environment or a file, by reference: the
	// value never sits in the runbook, history or evidence.
	HeadersEnv     map[string]string `json:"headersEnv"`
	HeadersFile    map[string]string `json:"headersFile"`
	RequestTimeout string            `json:"requestTimeout"`
}

// Checker runs http.check with an injected client.
type Checker struct {
	client  *http.Client
	secrets *secrets.Store
}

// New returns a Checker using client; secret header values are read through store.
func New(client *http.Client, store *secrets.Store) *Checker {
	return &Checker{client: client, secrets: store}
}

// Check performs the request. A wrong status or missing body text is a
// retryable failure (the service may still be starting); a malformed URL is not.
func (c *Checker) Check(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var a Args
	if err := in.DecodeArgs(&a); err != nil {
		return runbooks.StepResult{}, err
	}
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("http.check: %q is not an http(s) URL: fix with.url in step %s", a.URL, in.StepID), "InvalidArgument", nil)
	}
	method := a.Method
	if method == "" {
		method = http.MethodGet
	}
	// The drill guard at the point of change: whatever the validator said.
	if why := ChangesWith(map[string]any{"method": method}); why != "" && in.Drill() && in.DrillRun != "" && !slices.Contains(in.DrillOverridden, "url") {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"http.check in a drill refused, nothing sent: it %s to a production URL; skip step %s in the drill or point it away with spec.drill.with.%s.url", why, in.StepID, in.StepID), "DrillUnsafe", nil)
	}
	want := a.ExpectStatus
	if want == 0 {
		want = http.StatusOK
	}
	timeout := 10 * time.Second
	if a.RequestTimeout != "" {
		d, err := runbooks.ParseDuration(a.RequestTimeout)
		if err != nil {
			return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError("http.check: requestTimeout: "+err.Error(), "InvalidArgument", nil)
		}
		timeout = d.D()
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, a.URL, nil)
	if err != nil {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError("http.check: "+err.Error(), "InvalidArgument", nil)
	}
	for k, v := range a.Headers {
		req.Header.Set(k, v)
	}
	for k, name := range a.HeadersEnv {
		v, err := c.secrets.EnvValue(name, "http.check headersEnv."+k)
		if err != nil {
			return runbooks.StepResult{}, err
		}
		req.Header.Set(k, v)
	}
	for k, path := range a.HeadersFile {
		v, err := c.secrets.FileValue(path, "http.check headersFile."+k)
		if err != nil {
			return runbooks.StepResult{}, err
		}
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		return runbooks.StepResult{}, fmt.Errorf("http.check: %s %s: %w (is the service up and reachable from the worker?)", method, a.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	elapsed := time.Since(start).Round(time.Millisecond)
	if resp.StatusCode != want {
		return runbooks.StepResult{}, fmt.Errorf("http.check: %s %s answered %d, expected %d", method, a.URL, resp.StatusCode, want)
	}
	if a.ExpectBody != "" && !strings.Contains(string(body), a.ExpectBody) {
		return runbooks.StepResult{}, fmt.Errorf("http.check: %s %s answered %d but the body does not contain %q", method, a.URL, resp.StatusCode, a.ExpectBody)
	}
	return runbooks.StepResult{
		Summary: fmt.Sprintf("%s %s → %d in %s", method, a.URL, resp.StatusCode, elapsed),
		Outputs: map[string]any{"status": resp.StatusCode, "latencyMs": elapsed.Milliseconds()},
	}, nil
}

// ChangesWith says why an http.check with args changes something outside
// (a method other than GET, HEAD or OPTIONS), or "" when it only reads.
func ChangesWith(args map[string]any) string {
	m, _ := args["method"].(string)
	switch strings.ToUpper(m) {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions:
		return ""
	}
	return "sends " + strings.ToUpper(m)
}
