// Package notify implements notify.webhook: a Slack-compatible JSON message
// posted to a webhook.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/activities/failure"
	"github.com/lifeboat-dr/lifeboat/activities/httpcheck"
	"github.com/lifeboat-dr/lifeboat/activities/secrets"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Args are notify.webhook's arguments. URLEnv keeps secret webhook URLs out of
// runbooks (and so out of history): the worker reads the URL from its environment.
type Args struct {
	URL    string `json:"url"`
	URLEnv string `json:"urlEnv"`
	Text   string `json:"text"`
}

// Message is the Slack-compatible body posted.
type Message struct {
	Text string `json:"text"`
}

// Notifier posts webhooks with an injected client.
type Notifier struct {
	client  *http.Client
	secrets *secrets.Store
}

// New returns a Notifier; urlEnv is read through store, which allows only
// the variables the worker config names.
func New(client *http.Client, store *secrets.Store) *Notifier {
	return &Notifier{client: client, secrets: store}
}

// Send posts the message. 5xx, 429 and connection errors are retryable;
// other 4xx answers are not (the URL or payload is wrong).
func (n *Notifier) Send(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var a Args
	if err := in.DecodeArgs(&a); err != nil {
		return runbooks.StepResult{}, err
	}
	target, shown := a.URL, a.URL
	if a.URLEnv != "" {
		v, err := n.secrets.EnvValue(a.URLEnv, "notify.webhook urlEnv")
		if err != nil {
			return runbooks.StepResult{}, err
		}
		target, shown = v, "$"+a.URLEnv
	}
	text := strings.NewReplacer("{runbook}", in.Runbook, "{mode}", in.Mode, "{step}", in.StepID, "{workflowId}", in.WorkflowID).Replace(a.Text)
	status, err := Post(ctx, n.client, target, Message{Text: text})
	if err != nil {
		err = fmt.Errorf("notify.webhook to %s: %w", shown, err)
		if status >= 400 && status < 500 && status != http.StatusTooManyRequests {
			return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "WebhookRejected", nil)
		}
		return runbooks.StepResult{}, err
	}
	return runbooks.StepResult{Summary: fmt.Sprintf("posted to %s (%d)", shown, status)}, nil
}

// Post sends body as JSON and returns the HTTP status; a non-2xx status is an error.
func Post(ctx context.Context, client *http.Client, target string, body any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error // it quotes the URL, whose path may be the secret
		if errors.As(err, &ue) {
			return 0, fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("answered %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return resp.StatusCode, nil
}

// Precheck is notify.webhook's pre-flight check: the URL (or the variable
// holding it, allowed and set) resolves. The URL of a variable is never shown.
func (n *Notifier) Precheck(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
	var a Args
	if err := in.DecodeArgs(&a); err != nil {
		return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
	}
	if a.URLEnv == "" {
		return []runbooks.CheckResult{httpcheck.URLResolves(ctx, a.URL, secrets.RedactURLs(a.URL))}
	}
	if n.secrets == nil {
		return []runbooks.CheckResult{runbooks.Fail("webhook $"+a.URLEnv, "this worker lets runbooks read no secrets", "configure secrets.env in the worker config")}
	}
	v, err := n.secrets.EnvValue(a.URLEnv, "notify.webhook urlEnv")
	if err != nil {
		return []runbooks.CheckResult{runbooks.Fail("webhook $"+a.URLEnv, failure.Message(err), "set "+a.URLEnv+" on the worker and allow it in secrets.env")}
	}
	return []runbooks.CheckResult{httpcheck.URLResolves(ctx, v, "$"+a.URLEnv)}
}
