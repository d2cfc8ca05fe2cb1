// Package browser drives the Temporal UI in headless Chromium (chromedp) the
// way an operator uses it: the Start Workflow form, the workflow page, the
// signal dialog. Each step can leave a screenshot as a test artifact.
package browser

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// Browser is one headless Chromium tab on a Temporal UI.
type Browser struct {
	ctx       context.Context
	cancel    func()
	ui        string
	namespace string
	shots     string
	n         int
}

// Options configure Start.
type Options struct {
	// Chromium is the browser binary (see EnsureChromium).
	Chromium string
	// UI is the Temporal UI's base URL, e.g. http://localhost:8233.
	UI string
	// Namespace is the Temporal namespace (default "default").
	Namespace string
	// Screenshots is the directory for Shot's PNG files (created).
	Screenshots string
}

// Start launches Chromium headless with the flags a machine without internet
// needs (no background networking, no QUIC, a fresh profile).
func Start(ctx context.Context, o Options) (*Browser, error) {
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if err := os.MkdirAll(o.Screenshots, 0o755); err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(o.Chromium), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1400, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tctx, cancelTab := chromedp.NewContext(actx)
	if err := chromedp.Do(tctx, chromedp.Navigate("about:blank")); err != nil {
		cancelTab()
		cancelAlloc()
		return nil, fmt.Errorf("starting %s headless: %w", o.Chromium, err)
	}
	return &Browser{ctx: tctx, cancel: func() { cancelTab(); cancelAlloc() }, ui: strings.TrimSuffix(o.UI, "/"),
		namespace: o.Namespace, shots: o.Screenshots}, nil
}

// Close ends the browser.
func (b *Browser) Close() { b.cancel() }

// StartWorkflow fills the UI's Start Workflow form and submits it.
func (b *Browser) StartWorkflow(id, taskQueue, workflowType, inputJSON string) error {
	if err := chromedp.Do(b.ctx, chromedp.Navigate(b.ui+"/namespaces/"+b.namespace+"/workflows/start-workflow")); err != nil {
		return err
	}
	if err := b.waitFor("#workflowId", 15*time.Second); err != nil {
		return err
	}
	err := chromedp.Do(b.ctx,
		chromedp.SendKeys(chromedp.CSS("#workflowId"), id),
		chromedp.SendKeys(chromedp.CSS("#taskQueue"), taskQueue),
		chromedp.SendKeys(chromedp.CSS("#workflowType"), workflowType))
	if err != nil {
		return fmt.Errorf("start workflow form: %w", err)
	}
	if err := b.typeInEditor(".cm-content", inputJSON); err != nil {
		return err
	}
	if err := b.WaitText(inputJSON[:min(len(inputJSON), 20)], 5*time.Second); err != nil {
		return fmt.Errorf("the input did not reach the form: %w", err)
	}
	b.Shot("start-form-" + id)
	return b.Click("button", "Start Workflow")
}

// OpenWorkflow shows the page of the workflow's latest run: tab is the last
// part of its address, "history" or "user-metadata" (summary and current
// details), "queries"….
func (b *Browser) OpenWorkflow(id, tab string) error {
	if err := chromedp.Do(b.ctx, chromedp.Navigate(b.ui+"/namespaces/"+b.namespace+"/workflows/"+id)); err != nil {
		return err
	}
	if err := b.poll(`location.pathname.endsWith("/history")`, 15*time.Second, "missing-"+id, func() error {
		return fmt.Errorf("the UI did not open %s (at %s)", id, b.location())
	}); err != nil {
		return err
	}
	if tab == "history" {
		return nil
	}
	return chromedp.Do(b.ctx, chromedp.Navigate(strings.TrimSuffix(b.location(), "history")+tab))
}

// Signal sends a signal from the workflow page's More Actions → Send a Signal
// dialog, picking the name from the list the worker advertises.
func (b *Browser) Signal(name, inputJSON string) error {
	const dialog = "#signal-confirmation-modal[open]"
	if err := b.openAction("Send a Signal", dialog); err != nil {
		return err
	}
	if err := mouseClick(b, chromedp.CSS(dialog+" [data-testid=signal-select-button]")); err != nil {
		return err
	}
	if err := b.Click(dialog+" li[role=option]", name); err != nil {
		return fmt.Errorf("the signal list has no %q (does the worker run?): %w", name, err)
	}
	if err := b.typeInEditor(dialog+" .cm-content", inputJSON); err != nil {
		return err
	}
	b.Shot("signal-" + name)
	return b.Click(dialog+" button", "Submit")
}

// RequestCancellation cancels the open workflow as an operator does: the
// page's Request Cancellation button, then Confirm in its dialog.
func (b *Browser) RequestCancellation() error {
	const dialog = "#cancel-confirmation-modal[open]"
	if err := b.openDialog(dialog, func() error { return b.Click("button", "Request Cancellation") }); err != nil {
		return err
	}
	b.Shot("request-cancellation")
	return b.Click(dialog+" button", "Confirm")
}

// openAction opens the More Actions menu's item until its dialog shows.
func (b *Browser) openAction(item, dialog string) error {
	return b.openDialog(dialog, func() error {
		if err := b.Click("button", "More Actions"); err != nil {
			return err
		}
		return b.Click("[role=menuitem]", item)
	})
}

// openDialog clicks (open) until the dialog shows: a click before the page
// has hydrated does nothing.
func (b *Browser) openDialog(dialog string, open func() error) error {
	for attempt := 1; ; attempt++ {
		if err := open(); err != nil {
			return err
		}
		err := b.waitFor(dialog, 3*time.Second)
		if err == nil || attempt == 5 {
			return err
		}
	}
}

// mouseClick clicks the element like a mouse does (some of the UI's
// controls listen to pointer events, not click()), waiting up to 10 s.
func mouseClick[S chromedp.Selectable](b *Browser, sel S) error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(sel)); err != nil {
		b.Shot("missing-click")
		return fmt.Errorf("clicking %v on %s: %w", sel, b.location(), err)
	}
	return nil
}

// typeInEditor types into the last JSON editor (CodeMirror) matching
// selector, the way a person pastes: one insertText, so no bracket is
// auto-closed twice.
func (b *Browser) typeInEditor(selector, text string) error {
	focus := `(() => {
		const eds = document.querySelectorAll(` + strconv.Quote(selector) + `);
		if (!eds.length) return false;
		eds[eds.length - 1].focus();
		return true;
	})()`
	if err := b.poll(focus, 10*time.Second, "missing-editor", func() error {
		return fmt.Errorf("no JSON editor %s on %s", selector, b.location())
	}); err != nil {
		return err
	}
	_, err := chromedp.Call(b.ctx, input.InsertText, input.InsertTextParams{Text: text})
	return err
}

// Click clicks the last visible, enabled element matching selector whose text is
// text (any text when empty), waiting up to 10 s for it to appear.
func (b *Browser) Click(selector, text string) error {
	js := fmt.Sprintf(`(() => {
		const els = [...document.querySelectorAll(%q)].filter(e => (%q === '' || e.textContent.trim() === %q) && e.getClientRects().length > 0 && !e.disabled && e.getAttribute('aria-disabled') !== 'true');
		if (!els.length) return false;
		els[els.length - 1].click();
		return true;
	})()`, selector, text, text)
	return b.poll(js, 10*time.Second, "missing-"+text, func() error {
		return fmt.Errorf("no enabled %s %q on %s", selector, text, b.location())
	})
}

// waitFor waits for an element matching selector.
func (b *Browser) waitFor(selector string, timeout time.Duration) error {
	return b.poll(fmt.Sprintf(`document.querySelector(%q) !== null`, selector), timeout, "missing-"+selector,
		func() error { return fmt.Errorf("no %s on %s", selector, b.location()) })
}

// poll evaluates the JavaScript condition until it is true or timeout
// passes; then it takes a screenshot and returns failure's error.
func (b *Browser) poll(js string, timeout time.Duration, shot string, failure func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](js))
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			b.Shot(shot)
			return failure()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// WaitText waits until the page's visible text contains text.
func (b *Browser) WaitText(text string, timeout time.Duration) error {
	js := fmt.Sprintf(`(%s).includes(%q)`, pageText, text)
	return b.poll(js, timeout, "missing-"+text, func() error {
		return fmt.Errorf("%q did not show on %s within %s", text, b.location(), timeout)
	})
}

// Text is the page's visible text.
func (b *Browser) Text() string {
	s, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](pageText))
	return s
}

// pageText is the page's visible text and that of its same-origin frames:
// the UI renders Markdown (summary, current details) in iframes.
const pageText = `(() => {
	let t = document.body.innerText;
	for (const f of document.querySelectorAll('iframe')) {
		try { t += '\n' + f.contentDocument.body.innerText; } catch (e) {}
	}
	return t;
})()`

// Open navigates to url (a page that is not the UI's: a file:// evidence page).
func (b *Browser) Open(url string) error { return chromedp.Do(b.ctx, chromedp.Navigate(url)) }

// Eval evaluates a JavaScript expression on the page and returns its value as JSON.
func (b *Browser) Eval(js string) (string, error) {
	return chromedp.Run(b.ctx, chromedp.Evaluate[string]("JSON.stringify("+js+")"))
}

// Reload reloads the page (the UI polls, but a reload is immediate).
func (b *Browser) Reload() error { return chromedp.Do(b.ctx, chromedp.Reload()) }

// Shot writes a numbered full-page PNG named after what it shows and returns its path.
func (b *Browser) Shot(name string) string {
	b.n++
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return ""
	}
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(name))
	p := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, clean))
	if os.WriteFile(p, buf, 0o644) != nil {
		return ""
	}
	return p
}

func (b *Browser) location() string {
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	return loc
}
