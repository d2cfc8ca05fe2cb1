package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/testsuite/demo/demokit"
)

// summary is the demo's ending: one row per run the demo left in the
// evidence directory (run, mode, outcome, RTO, evidence file), the
// auditor's check of every record, and one line to end on.
func summary(ctx context.Context, bin, dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return "", err
	}
	type row struct {
		ev   record.Evidence
		file string
	}
	var rows []row
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		var ev record.Evidence
		if json.Unmarshal(b, &ev) != nil || ev.WorkflowID == "" || ev.Seal == nil || ev.Seal.Checkpoint {
			continue // a re-enactment's comparison, or a checkpoint the final record replaced
		}
		rows = append(rows, row{ev, f})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ev.StartedAt.Before(rows[j].ev.StartedAt) })
	demokit.Say(fmt.Sprintf("the demo's %d runs; their evidence is in .lifeboat/evidence/ (each record's JSON, its signature, its Markdown and its timeline picture)", len(rows)))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tMODE\tOUTCOME\tRTO (actual / target)\tEVIDENCE (.lifeboat/evidence/)")
	outcomes := map[string]int{}
	for _, r := range rows {
		rto := fmt.Sprintf("%s / %s", r.ev.RTOActual.Readable(), r.ev.RTOTarget)
		if r.ev.RTOBreached {
			rto += " BREACHED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ev.WorkflowID, r.ev.Mode, r.ev.Outcome, rto, strings.TrimSuffix(filepath.Base(r.file), ".json")+".md")
		outcomes[r.ev.Outcome]++
	}
	if err := tw.Flush(); err != nil {
		return "", err
	}
	out, err := demokit.Capture(ctx, bin, "evidence", "verify", dir)
	if err != nil {
		fmt.Print(out)
		return "", fmt.Errorf("the demo's evidence does not verify: %w", err)
	}
	verified := strings.TrimSpace(out)
	if i := strings.LastIndex(verified, "\n"); i >= 0 {
		verified = verified[i+1:]
	}
	fmt.Println(verified)
	var counts []string
	for _, o := range []string{"succeeded", "failed", "aborted"} {
		if outcomes[o] > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", outcomes[o], o))
		}
	}
	return fmt.Sprintf("%d runs (%s), evidence verified", len(rows), strings.Join(counts, ", ")), nil
}
