package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// cmdPrecheck runs a runbook's pre-flight checks alone (a run with
// precheckOnly: phase 0, then it ends), or each member's of a recovery plan,
// and prints every check; exit 1 when one fails.
func cmdPrecheck(fs *pflag.FlagSet) runner {
	cf := addClientFlags(fs)
	mode := fs.String("mode", workflows.ModeDrill, "check as a drill (mappings applied) or a failover")
	as := fs.String("as", defaultUser(), "who asks")
	return func(ctx context.Context, pos []string) error {
		st, c, cfg, err := cf.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		names := []string{pos[0]}
		if isPlanName(cfg.Catalog, pos[0]) {
			cat, _ := runbooks.LoadCatalog(cfg.Catalog...)
			plan, _ := cat.Plan(pos[0])
			names = nil
			for _, m := range plan.Plan.Spec.Members {
				names = append(names, m.Runbook)
			}
		}
		var all []record.Evidence
		failed := false
		for _, name := range names {
			req := workflows.Request{Runbook: name, Mode: *mode, PrecheckOnly: true, RequestedBy: *as, Reason: "pre-flight checks (lifeboat precheck)"}
			run, ev, err := runToEnd(ctx, st, req)
			if err != nil {
				return err
			}
			all = append(all, ev)
			if *cf.output != "json" {
				printChecks(name, *mode, run.WorkflowID, ev.Prechecks)
			}
			failed = failed || ev.Outcome != workflows.RunSucceeded
		}
		if *cf.output == "json" {
			if err := printJSON(all); err != nil {
				return err
			}
		}
		if failed {
			return exitError{1}
		}
		return nil
	}
}

func printChecks(name, mode, run string, checks []record.PrecheckRecord) {
	fmt.Printf("%s (%s) — %d check(s), run %s\n", name, mode, len(checks), run)
	for _, c := range checks {
		mark := "ok  "
		switch {
		case !c.OK && c.Advisory:
			mark = "warn"
		case !c.OK:
			mark = "FAIL"
		}
		line := fmt.Sprintf("  %s %-26s %s", mark, c.ID, c.Name)
		if c.Message != "" {
			line += " — " + c.Message
		}
		if !c.OK && c.Fix != "" {
			line += "\n       fix: " + c.Fix
		}
		fmt.Println(line)
	}
	if len(checks) == 0 {
		fmt.Fprintln(os.Stdout, "  (no step of "+name+" declares a pre-flight check)")
	}
}
