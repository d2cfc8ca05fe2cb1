package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// dryRunCommand is failover|drill NAME --dry-run: a run that checks, asks
// every step what it would change and changes nothing; it prints the
// checks, the changes and the plan's timing against the RTO.
func dryRunCommand(ctx context.Context, cf clientFlags, req workflows.Request) error {
	st, c, cfg, err := cf.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := checkAgainstCatalog(cfg.Catalog, &req); err != nil {
		return err
	}
	if req.Plan != "" {
		return fmt.Errorf("--dry-run takes a runbook: dry-run each member of plan %s (lifeboat plan %s lists them)", req.Plan, req.Plan)
	}
	run, ev, err := runToEnd(ctx, st, req)
	if err != nil {
		return err
	}
	if *cf.output == "json" {
		return printJSON(struct {
			WorkflowID string                  `json:"workflowId"`
			Prechecks  []record.PrecheckRecord `json:"prechecks"`
			DryRun     *runbooks.DryRun        `json:"dryRun"`
		}{run.WorkflowID, ev.Prechecks, ev.DryRun})
	}
	printChecks(req.Runbook, req.Mode, run.WorkflowID, ev.Prechecks)
	d := ev.DryRun
	if d == nil {
		return fmt.Errorf("the run recorded no dry run (it was aborted?): lifeboat evidence %s", run.WorkflowID)
	}
	fmt.Printf("\nWhat a %s of %s would change (nothing was changed):\n", req.Mode, req.Runbook)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tWHAT\tNOW\tWOULD BE\tNOTE")
	for _, ch := range d.Changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ch.Step, ch.What, runbooks.OrDash(ch.Before), runbooks.OrDash(ch.After), ch.Note)
	}
	_ = tw.Flush()
	if len(d.Unchanged) > 0 {
		fmt.Printf("changes nothing: %v\n", d.Unchanged)
	}
	for _, e := range d.Errors {
		fmt.Printf("could not be dry-run: %s\n", e)
	}
	fmt.Println()
	d.Plan.WriteText(os.Stdout)
	if ev.Outcome != workflows.RunSucceeded {
		return exitError{1}
	}
	return nil
}
