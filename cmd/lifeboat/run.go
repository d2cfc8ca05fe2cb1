package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/worker"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// startMode returns the failover / drill / tabletop command.
func startMode(mode string) func(*pflag.FlagSet) runner {
	return func(fs *pflag.FlagSet) runner {
		cf := addClientFlags(fs)
		reason := fs.String("reason", "", "why this run (recorded in the evidence)")
		as := fs.String("as", defaultUser(), "who requests the run")
		declared := fs.String("declared-at", "", "when the disaster was declared (RFC3339); starts the RTO clock (default: now)")
		follow := fs.Bool("follow", false, "follow the run until it ends, then print its evidence")
		var dryRun *bool
		if mode != workflows.ModeTabletop {
			dryRun = fs.Bool("dry-run", false, "change nothing: run the pre-flight checks and print what every step would change")
		}
		return func(ctx context.Context, pos []string) error {
			if dryRun != nil && *dryRun {
				return dryRunCommand(ctx, cf, workflows.Request{Runbook: pos[0], Mode: mode, DryRun: true, RequestedBy: *as,
					Reason: cmp.Or(*reason, "dry run")})
			}
			if mode == workflows.ModeFailover && strings.TrimSpace(*reason) == "" {
				return fmt.Errorf("a failover needs --reason: the evidence must say why traffic moved")
			}
			req := workflows.Request{Runbook: pos[0], Mode: mode, Reason: *reason, RequestedBy: *as}
			if *declared != "" {
				t, err := time.Parse(time.RFC3339, *declared)
				if err != nil {
					return fmt.Errorf("--declared-at %q: use RFC3339, e.g. 2026-11-21T02:37:00Z", *declared)
				}
				req.DeclaredAt = &t
			}
			st, c, cfg, err := cf.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			if err := checkAgainstCatalog(cfg.Catalog, &req); err != nil {
				return err
			}
			run, err := startAndAwait(ctx, st, req)
			if err != nil && req.Plan == "" && strings.Contains(err.Error(), "is a recovery plan, not a runbook") {
				// The CLI has no catalog of its own: the worker's says it is a plan.
				req.Runbook, req.Plan = "", req.Runbook
				run, err = startAndAwait(ctx, st, req)
			}
			if err != nil {
				return err
			}
			if *cf.output == "json" {
				started := map[string]string{"workflowId": run.WorkflowID, "runId": run.RunID}
				if !*follow {
					return printJSON(started)
				}
				// The first line of the NDJSON stream.
				return followRun(ctx, st, run.WorkflowID, *cf.output, started)
			}
			fmt.Printf("started %s %s\n  workflow: %s\n  status:   lifeboat status %s\n", mode, pos[0], run.WorkflowID, run.WorkflowID)
			if ui := uiLink(cfg.Temporal.Namespace, run.WorkflowID); ui != "" {
				fmt.Printf("  UI:       %s\n", ui)
			}
			if !*follow {
				return nil
			}
			return followRun(ctx, st, run.WorkflowID, *cf.output)
		}
	}
}

// startWait bounds how long a start waits for the worker to resolve the runbook.
const startWait = 15 * time.Second

// startAndAwait starts the run and waits a moment for it to resolve its
// runbook: the worker may still refuse it (its catalog is the one that
// counts), and a refusal is an error here, not a run that says "resolving"
// forever.
func startAndAwait(ctx context.Context, st *starter.Starter, req workflows.Request) (starter.Run, error) {
	run, err := st.Start(ctx, req)
	if err != nil {
		return run, err
	}
	wctx, cancel := context.WithTimeout(ctx, startWait)
	defer cancel()
	return run, st.AwaitStart(wctx, run.WorkflowID)
}

// runToEnd starts the run (see startAndAwait) and waits for its evidence.
func runToEnd(ctx context.Context, st *starter.Starter, req workflows.Request) (starter.Run, record.Evidence, error) {
	run, err := startAndAwait(ctx, st, req)
	if err != nil {
		return run, record.Evidence{}, err
	}
	ev, err := st.Wait(ctx, run.WorkflowID)
	return run, ev, err
}

// checkAgainstCatalog refuses, before anything starts, a runbook the CLI's
// catalog does not have (with its did-you-mean), an invalid one, or a drill
// that could touch production; a name that is a recovery plan there makes
// req a plan's (whose members are checked the same way). A CLI with no
// catalog configured (config file or LIFEBOAT_CATALOG; the built-in default
// is only a guess) or one it cannot read leaves the check to the worker.
func checkAgainstCatalog(dirs []string, req *workflows.Request) error {
	if slices.Equal(dirs, worker.Defaults().Catalog) {
		return nil
	}
	cat, _ := runbooks.LoadCatalog(dirs...)
	if cat == nil || len(cat.Names()) == 0 {
		return nil
	}
	if cat.IsPlan(req.Runbook) {
		req.Runbook, req.Plan = "", req.Runbook
		plan, _ := cat.Plan(req.Plan)
		if errs := runbooks.ValidatePlan(plan.Plan, cat).Errors(); len(errs) > 0 {
			return fmt.Errorf("recovery plan %s cannot run (nothing was started):\n%s", req.Plan, errs.Error())
		}
		for _, m := range plan.Plan.Spec.Members {
			member := workflows.Request{Runbook: m.Runbook, Mode: req.Mode}
			if err := checkRunbook(cat, dirs, member); err != nil {
				return fmt.Errorf("member %s of recovery plan %s: %w", m.Runbook, req.Plan, err)
			}
		}
		return nil
	}
	return checkRunbook(cat, dirs, *req)
}

// isPlanName is true when the catalog at dirs holds a recovery plan called name.
func isPlanName(dirs []string, name string) bool {
	cat, _ := runbooks.LoadCatalog(dirs...)
	return cat != nil && cat.IsPlan(name)
}

// checkRunbook is checkAgainstCatalog for one runbook.
func checkRunbook(cat *runbooks.Catalog, dirs []string, req workflows.Request) error {
	entry, err := cat.Get(req.Runbook)
	if err != nil {
		return fmt.Errorf("%w\n(nothing was started; the catalog is %s)", err, strings.Join(dirs, ", "))
	}
	schema := activities.Catalogue()
	problems := runbooks.Validate(entry.Runbook, schema).Errors()
	if req.Mode == workflows.ModeDrill && len(problems) == 0 {
		problems = runbooks.ValidateDrill(entry.Runbook, schema).Errors()
	}
	if len(problems) > 0 {
		return fmt.Errorf("runbook %s cannot run as a %s (nothing was started):\n%s", req.Runbook, req.Mode, problems.Error())
	}
	return nil
}

// uiLink is the run's page in the local UI (LIFEBOAT_UI_URL overrides the base).
func uiLink(namespace, id string) string {
	base := os.Getenv("LIFEBOAT_UI_URL")
	if base == "" {
		base = "http://localhost:8233"
	}
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s", strings.TrimSuffix(base, "/"), namespace, id)
}

// WaitingForAPerson is the visibility query of the runs a person must act
// on: a gate, a manual task or a tabletop step, or a paused step.
const WaitingForAPerson = `LifeboatState IN ("awaiting-approval", "awaiting-ack", "paused")`

// listLink is the Temporal UI's workflow list (ui: the UI's base URL)
// filtered by the visibility query: WaitingForAPerson, or
// workflows.RefusedStarts.
func listLink(ui, namespace, query string) string {
	return fmt.Sprintf("%s/namespaces/%s/workflows?query=%s", strings.TrimSuffix(ui, "/"), namespace, url.QueryEscape(query))
}

func cmdStatus(fs *pflag.FlagSet) runner {
	cf := addClientFlags(fs)
	follow := fs.Bool("follow", false, "keep printing changes until the run ends")
	return func(ctx context.Context, pos []string) error {
		st, c, _, err := cf.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		if *follow {
			return followRun(ctx, st, pos[0], *cf.output)
		}
		s, err := st.Status(ctx, pos[0])
		if err != nil {
			return err
		}
		if *cf.output == "json" {
			return printJSON(s)
		}
		printStatus(os.Stdout, s, time.Now())
		return nil
	}
}

func printStatus(w io.Writer, s workflows.Status, now time.Time) {
	fmt.Fprintf(w, "%s  %s v%d  mode %s  state %s", s.WorkflowID, s.Runbook, s.Version, s.Mode, s.State)
	if s.Layer != "" && !s.Finished {
		fmt.Fprintf(w, "  layer %s", s.Layer)
	}
	fmt.Fprintln(w)
	switch {
	case s.RTO > 0 && s.Finished:
		took := s.RTO.D() - s.RTORemaining.D()
		if s.RTOBreached || s.RTORemaining < 0 {
			fmt.Fprintf(w, "RTO %s: finished in %s, BREACHED by %s (deadline %s)\n", s.RTO, runbooks.Duration(took).Readable(),
				(-s.RTORemaining).Readable(), s.Deadline.Local().Format("15:04:05"))
		} else {
			fmt.Fprintf(w, "RTO %s: finished in %s, %s before the deadline %s\n", s.RTO, runbooks.Duration(took).Readable(),
				s.RTORemaining.Readable(), s.Deadline.Local().Format("15:04:05"))
		}
	case s.RTO > 0:
		fmt.Fprintf(w, "RTO %s: %s  (deadline %s, projected finish %s)\n", s.RTO, budget(s.Deadline.Sub(now), s.RTO.D(), s.RTOBreached),
			s.Deadline.Local().Format("15:04:05"), s.ProjectedFinish.Local().Format("15:04:05"))
	}
	fmt.Fprintf(w, "%-10s %-28s %-22s %-18s %8s %s\n", "LAYER", "STEP", "ACTION", "STATE", "DURATION", "ATTEMPTS")
	for _, st := range s.Steps {
		fmt.Fprintf(w, "%-10s %-28s %-22s %-18s %8s %d", st.Layer, st.ID, st.Action, st.State, durationCell(st), st.Attempts)
		if m := st.Member; m != nil {
			fmt.Fprintf(w, "  run %s: %s", m.WorkflowID, m.State)
			if m.Layer != "" && !m.Finished {
				fmt.Fprintf(w, ", layer %s", m.Layer)
			}
		}
		if st.Error != "" {
			fmt.Fprintf(w, "  %s", st.Error)
		}
		fmt.Fprintln(w)
	}
	for _, p := range s.Pending {
		fmt.Fprintf(w, "WAITING: %s\n", p.Message)
	}
	if s.Refused != "" {
		fmt.Fprintf(w, "REFUSED: %s\n", s.Refused)
	}
}

// durationCell is a step's duration for the table: rounded, blank before it started.
func durationCell(st workflows.StepStatus) string {
	if st.Started == nil {
		return "-"
	}
	return st.Duration.Readable()
}

// budget draws the RTO budget: used share as a bar, and what is left.
func budget(remaining, rto time.Duration, breached bool) string {
	const width = 30
	used := 1 - float64(remaining)/float64(rto)
	used = min(max(used, 0), 1)
	n := int(used * width)
	bar := "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
	if breached || remaining < 0 {
		return bar + fmt.Sprintf(" BREACHED by %s", (-remaining).Round(time.Second))
	}
	return bar + fmt.Sprintf(" %s left", remaining.Round(time.Second))
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// message is the shared shape of the operator commands.
type message struct {
	name   string
	minPos int
	maxPos int
	build  func(pos []string, as, comment, reason string) workflows.Signable
}

func operatorCommand(m message) func(*pflag.FlagSet) runner {
	return func(fs *pflag.FlagSet) runner {
		cf := addClientFlags(fs)
		as := fs.String("as", defaultUser(), "who you are (approvers are checked against the runbook's groups)")
		comment := fs.String("comment", "", "comment recorded with the decision")
		reason := fs.String("reason", "", "reason (required for reject, skip, abort)")
		signal := fs.Bool("signal", false, "send as a signal (as the Temporal UI does) instead of a validated update")
		return func(ctx context.Context, pos []string) error {
			msg := m.build(pos, *as, *comment, *reason)
			st, c, _, err := cf.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			target := pos[0]
			if len(pos) > 1 && m.maxPos == 2 {
				if target = st.Route(ctx, pos[0], pos[1]); target != pos[0] && *cf.output != "json" {
					fmt.Printf("%s belongs to member run %s of plan run %s\n", pos[1], target, pos[0])
				}
			}
			if *signal {
				if err := st.Signal(ctx, target, m.name, msg); err != nil {
					return err
				}
				fmt.Printf("%s signal sent to %s (a refused signal is recorded as a note; check lifeboat status)\n", m.name, target)
				return nil
			}
			reply, err := st.Update(ctx, target, m.name, msg)
			if err != nil {
				return withAsSource(err, fs)
			}
			if *cf.output == "json" {
				return printJSON(reply)
			}
			fmt.Printf("%s: %s\n", target, reply.Message)
			return nil
		}
	}
}

// messages are the operator messages, by name: the commands that send
// them, and lifeboat sign, which prints them signed for the Temporal UI.
var messages = map[string]message{
	workflows.MsgApprove: {name: workflows.MsgApprove, minPos: 2, maxPos: 2,
		build: func(p []string, as, comment, _ string) workflows.Signable {
			return workflows.Approve{Step: p[1], By: as, Comment: comment}
		}},
	workflows.MsgReject: {name: workflows.MsgReject, minPos: 2, maxPos: 2,
		build: func(p []string, as, comment, reason string) workflows.Signable {
			return workflows.Reject{Step: p[1], By: as, Reason: cmp.Or(reason, comment)}
		}},
	workflows.MsgAck: {name: workflows.MsgAck, minPos: 2, maxPos: 2,
		build: func(p []string, as, comment, _ string) workflows.Signable {
			return workflows.Ack{Step: p[1], By: as, Comment: comment}
		}},
	workflows.MsgRetry: {name: workflows.MsgRetry, minPos: 2, maxPos: 2,
		build: func(p []string, as, _, _ string) workflows.Signable { return workflows.Retry{Step: p[1], By: as} }},
	workflows.MsgSkip: {name: workflows.MsgSkip, minPos: 2, maxPos: 2,
		build: func(p []string, as, comment, reason string) workflows.Signable {
			return workflows.Skip{Step: p[1], By: as, Reason: cmp.Or(reason, comment)}
		}},
	workflows.MsgAbort: {name: workflows.MsgAbort, minPos: 1, maxPos: 1,
		build: func(_ []string, as, comment, reason string) workflows.Signable {
			return workflows.Abort{By: as, Reason: cmp.Or(reason, comment)}
		}},
	workflows.MsgOverride: {name: workflows.MsgOverride, minPos: 2, maxPos: 2,
		build: func(p []string, as, comment, reason string) workflows.Signable {
			return workflows.Override{Check: p[1], By: as, Reason: cmp.Or(reason, comment)}
		}},
	workflows.MsgNote: {name: workflows.MsgNote, minPos: 2, maxPos: -1,
		build: func(p []string, as, _, _ string) workflows.Signable {
			return workflows.Note{By: as, Text: joinArgs(p[1:])}
		}},
}
