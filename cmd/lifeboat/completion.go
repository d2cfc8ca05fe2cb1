package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// Dynamic shell completion (lifeboat completion bash|zsh|fish): runbook
// names from the CLI's catalog, run ids from Temporal's visibility (newest
// first), the steps a run waits on and the people who may answer. A
// completion that cannot reach Temporal offers nothing rather than an error:
// the shell has no place to show one.

// completionWait bounds how long a <TAB> may ask Temporal.
const completionWait = 3 * time.Second

// runbookNames completes the first argument with the catalog's runbooks and
// recovery plans, each with its title.
func runbookNames(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cat, _ := runbooks.LoadCatalog(cfg.Catalog...)
	if cat == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, name := range cat.Names() {
		if e, err := cat.Get(name); err == nil {
			out = append(out, cobra.CompletionWithDesc(name, fmt.Sprintf("runbook, RTO %s", e.Runbook.Spec.Objectives.RTO)))
		}
	}
	for _, name := range cat.PlanNames() {
		out = append(out, cobra.CompletionWithDesc(name, "recovery plan"))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// runIDs completes the first argument with run ids, newest first: the open
// runs, or with open false the finished ones.
func runIDs(open bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return openRuns(cmd, open), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
	}
}

func openRuns(cmd *cobra.Command, open bool) []cobra.Completion {
	var out []cobra.Completion
	withStarter(cmd, func(ctx context.Context, st *starter.Starter) {
		runs, err := st.Runs(ctx, open, 50)
		if err != nil {
			return
		}
		for _, r := range runs {
			out = append(out, cobra.CompletionWithDesc(r.WorkflowID, fmt.Sprintf("%s %s, started %s ago", r.Mode, r.Runbook, time.Since(r.Started).Round(time.Second))))
		}
	})
	return out
}

// waitKinds are the kinds of workflows.Pending each operator message answers.
var waitKinds = map[string][]string{
	workflows.MsgApprove:  {"approval"},
	workflows.MsgReject:   {"approval"},
	workflows.MsgAck:      {"acknowledgement"},
	workflows.MsgRetry:    {"operator"},
	workflows.MsgSkip:     {"operator", "approval", "acknowledgement"},
	workflows.MsgOverride: {"precheck"},
}

// waitingSteps completes the run id (open runs), then the steps of that run
// that wait for this message (approve: the steps waiting for approval).
func waitingSteps(msg string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		const dir = cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
		switch {
		case len(args) == 0:
			return openRuns(cmd, true), dir
		case len(args) == 1 && waitKinds[msg] != nil:
			var out []cobra.Completion
			for _, p := range pendingOf(cmd, args[0]) {
				if slices.Contains(waitKinds[msg], p.Kind) {
					out = append(out, cobra.CompletionWithDesc(p.Step, strings.TrimSuffix(p.Message, ": "+p.Command)))
				}
			}
			return out, dir
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// approverNames completes --as with the people who may still approve the
// step named by the arguments (RUN STEP), or who may answer the run at all.
func approverNames(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) < 1 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, p := range pendingOf(cmd, args[0]) {
		if len(args) > 1 && p.Step != args[1] {
			continue
		}
		for _, who := range p.Approvers {
			if !slices.Contains(out, who) {
				out = append(out, who)
			}
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// pendingOf is what the run waits for (nothing when Temporal is unreachable).
func pendingOf(cmd *cobra.Command, run string) []workflows.Pending {
	var out []workflows.Pending
	withStarter(cmd, func(ctx context.Context, st *starter.Starter) {
		if s, err := st.Status(ctx, run); err == nil {
			out = s.Pending
		}
	})
	return out
}

// withStarter calls f with a starter on the command's config and a context
// bounded by completionWait; when Temporal cannot be reached f is not called.
func withStarter(cmd *cobra.Command, f func(context.Context, *starter.Starter)) {
	ctx, cancel := context.WithTimeout(cmd.Context(), completionWait)
	defer cancel()
	cfg, err := loadConfig(configPath)
	if err != nil {
		return
	}
	st, c, err := dial(cfg)
	if err != nil {
		return
	}
	defer c.Close()
	f(ctx, st)
}
