package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/lifeboat-dr/lifeboat/activities/evidence"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/starter"
)

// cmdReenact re-runs a past run's runbook text as a drill and compares timings.
func cmdReenact(fs *pflag.FlagSet) runner {
	cf := addClientFlags(fs)
	as := fs.String("as", defaultUser(), "who requests the re-enactment")
	threshold := fs.Float64("threshold", 1.5, "a step is slower when it now takes more than this many times as long")
	minDelta := fs.Duration("min-delta", time.Second, "and at least this much longer")
	out := fs.String("out", "", "also write the comparison (Markdown) to this file")
	return func(ctx context.Context, pos []string) error {
		if *threshold < 1 {
			return fmt.Errorf("--threshold %.2f: use a factor of 1 or more, e.g. 1.5", *threshold)
		}
		st, c, cfg, err := cf.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		re, err := st.Reenact(ctx, pos[0], *as)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "re-enacting %s (%s of %s v%d, %s) as drill %s\n", pos[0], re.Then.Mode, re.Then.Runbook.Name,
			re.Then.Runbook.Version, re.Then.Runbook.Hash, re.Run.WorkflowID)
		now, err := newFollower(os.Stdout, styleLines).follow(ctx, st, re.Run.WorkflowID)
		if err != nil {
			return err
		}
		cmp := record.Compare(re.Then, now, *threshold, *minDelta)
		md := cmp.Markdown()
		if store, err := cfg.EvidenceStore(); err != nil || store == nil {
			fmt.Fprintf(os.Stderr, "warning: the comparison was not stored: no evidence location (%v)\n", err)
		} else if err := storeComparison(ctx, store, re.Run, cmp, md); err != nil {
			fmt.Fprintf(os.Stderr, "warning: the comparison was not stored: %v\n", err)
		}
		if *out != "" {
			if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
				return err
			}
		}
		if *cf.output == "json" {
			return printJSON(cmp)
		}
		fmt.Println()
		fmt.Print(md)
		return nil
	}
}

// storeComparison writes the comparison beside the re-enactment's evidence.
func storeComparison(ctx context.Context, st evidence.Store, run starter.Run, cmp record.Comparison, md string) error {
	stem := strings.TrimSuffix(evidence.RecordName(run.WorkflowID, run.RunID), ".json") + ".reenactment"
	b, err := json.MarshalIndent(cmp, "", "  ")
	if err != nil {
		return err
	}
	if err := st.Put(ctx, stem+".json", append(b, '\n'), false); err != nil {
		return err
	}
	if err := st.Put(ctx, stem+".md", []byte(md), false); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "comparison stored as %s and .json\n", st.Location(stem+".md"))
	return nil
}
