package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// followRun shows a run until it ends, then its evidence. On a terminal it
// redraws a live table (layers and steps with state, duration and attempts,
// the RTO budget bar with the projected finish, pending approvals with the
// exact command) every second; otherwise it prints a plain line per change;
// with --output json it prints one JSON object per line (NDJSON): first
// lines (if any), then a status at every change, then the evidence.
func followRun(ctx context.Context, st *starter.Starter, id, output string, first ...any) error {
	f := newFollower(os.Stdout, followStyle(output))
	for _, v := range first {
		f.jsonLine(v)
	}
	ev, err := f.follow(ctx, st, id)
	if err != nil {
		return err
	}
	switch f.style {
	case styleJSON:
		f.jsonLine(ev)
	default:
		fmt.Fprintln(f.out)
		fmt.Fprint(f.out, ev.Markdown())
	}
	return nil
}

func newFollower(out io.Writer, s style) *follower {
	return &follower{out: out, style: s, seen: map[string]string{}, pendingSeen: map[string]bool{}}
}

// follow shows the run's statuses until it ends and returns its evidence.
func (f *follower) follow(ctx context.Context, st *starter.Starter, id string) (record.Evidence, error) {
	for {
		s, err := st.Status(ctx, id)
		if err != nil {
			var refused *starter.RefusedError
			var failed *starter.StartFailedError
			if errors.As(err, &refused) || errors.As(err, &failed) {
				return record.Evidence{}, err
			}
			break // finished (or gone): fall through to the evidence
		}
		f.show(s, time.Now())
		if s.Finished {
			break
		}
		select {
		case <-ctx.Done():
			return record.Evidence{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return st.Wait(ctx, id)
}

type style int

const (
	styleLines  style = iota // plain lines, one per change
	styleRedraw              // a terminal: the whole table redrawn
	styleJSON                // NDJSON
)

// followStyle picks how to follow: JSON when asked, a redrawn table on a
// terminal (not TERM=dumb), plain lines otherwise (pipes, CI logs).
func followStyle(output string) style {
	if output == "json" {
		return styleJSON
	}
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb" {
		return styleRedraw
	}
	return styleLines
}

// follower renders successive statuses of one run.
type follower struct {
	out         io.Writer
	style       style
	seen        map[string]string // step → state last shown
	pendingSeen map[string]bool
}

// show renders one status.
func (f *follower) show(s workflows.Status, now time.Time) {
	switch f.style {
	case styleRedraw:
		var b bytes.Buffer
		b.WriteString("\x1b[H\x1b[2J") // home, clear: one write per frame, no flicker
		printStatus(&b, s, now)
		fmt.Fprintf(&b, "\nfollowing %s — updated %s; Ctrl-C stops following (the run goes on)\n", s.WorkflowID, now.Format("15:04:05"))
		_, _ = f.out.Write(b.Bytes())
	case styleJSON:
		if steps, pending := f.news(s); len(steps)+len(pending) > 0 {
			f.jsonLine(s)
		}
	default:
		f.lines(s, now)
	}
}

// news returns the steps whose state changed and the pending decisions
// that are new since the last call, and remembers them.
func (f *follower) news(s workflows.Status) (steps []workflows.StepStatus, pending []workflows.Pending) {
	for _, step := range s.Steps {
		if f.seen[step.ID] != step.State {
			f.seen[step.ID] = step.State
			steps = append(steps, step)
		}
	}
	for _, p := range s.Pending {
		key := p.Step + p.Kind + fmt.Sprint(len(p.Have))
		if !f.pendingSeen[key] {
			f.pendingSeen[key] = true
			pending = append(pending, p)
		}
	}
	return steps, pending
}

// lines prints one line per step whose state changed and per new pending
// decision, then the RTO budget.
func (f *follower) lines(s workflows.Status, now time.Time) {
	ts := now.Format("15:04:05")
	steps, pending := f.news(s)
	for _, step := range steps {
		line := fmt.Sprintf("%s %-10s %-28s %-18s attempts %d", ts, step.Layer, step.ID, step.State, step.Attempts)
		if step.Duration > 0 {
			line += fmt.Sprintf("  %s", step.Duration)
		}
		if step.Error != "" {
			line += "  " + step.Error
		}
		fmt.Fprintln(f.out, line)
	}
	for _, p := range pending {
		fmt.Fprintf(f.out, "%s WAITING: %s\n", ts, p.Message)
	}
	if len(steps)+len(pending) > 0 && s.RTO > 0 {
		fmt.Fprintf(f.out, "%s RTO %s: %s, projected finish %s\n", ts, s.RTO, budget(s.Deadline.Sub(now), s.RTO.D(), s.RTOBreached),
			s.ProjectedFinish.Local().Format("15:04:05"))
	}
}

func (f *follower) jsonLine(v any) {
	b, err := json.Marshal(v)
	if err == nil {
		fmt.Fprintf(f.out, "%s\n", b)
	}
}
