package record

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// HTML renders the whole record as one page for a browser: the timeline
// picture inline, then the Markdown (rendered with goldmark, GitHub's
// tables; raw HTML in the record's texts is left out, never run).
func (e Evidence) HTML() (string, error) {
	var body bytes.Buffer
	md := goldmark.New(goldmark.WithExtensions(extension.Table))
	if err := md.Convert([]byte(e.Markdown()), &body); err != nil {
		return "", fmt.Errorf("rendering the evidence of %s: %w", e.WorkflowID, err)
	}
	outcome := "ok"
	if e.Outcome != "succeeded" || e.RTOBreached {
		outcome = "bad"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Restore evidence %s — %s</title>
<style>
body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;font-size:13px}
.outcome{font-size:1.3em;padding:.4em .8em;border-radius:4px;display:inline-block}
.ok{background:#e3f4e8;color:#1e6b34}.bad{background:#fbe3e1;color:#922b21}
figure{margin:1em 0;overflow-x:auto}code{background:#f4f4f4;padding:1px 3px}
</style></head><body>
<p class="outcome %s" id="outcome">%s: %s</p>
<figure id="timeline">%s</figure>
%s</body></html>
`, esc(e.ID), esc(e.Outcome), outcome, esc(e.Runbook.Name+" "+e.Mode), esc(outcomeLine(e)), e.TimelineSVG(), body.String())
	return b.String(), nil
}

// outcomeLine is the page's first line: the outcome and the RTO.
func outcomeLine(e Evidence) string {
	line := fmt.Sprintf("%s in %s (RTO %s", e.Outcome, e.RTOActual.Readable(), e.RTOTarget)
	if e.RTOBreached {
		line += ", BREACHED"
	}
	return line + ")"
}
