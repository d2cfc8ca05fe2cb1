package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"
	historypb "go.temporal.io/api/history/v1"

	"github.com/lifeboat-dr/lifeboat/activities/evidence"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/worker"
)

// cmdEvidence prints a run's evidence: from the evidence sink when it holds
// the run, otherwise rebuilt from the run's history (on the server, or in an
// exported history file), so the record survives a lost sink.
func cmdEvidence(fset *pflag.FlagSet) runner {
	cf := addClientFlags(fset, "md", "json", "html")
	// --format is what this flag was called before -o/--output: the same value.
	fset.Var(fset.Lookup("output").Value, "format", "md, json or html (use -o/--output)")
	_ = fset.MarkDeprecated("format", "use -o/--output")
	format := cf.output
	out := fset.String("out", "", "write to this file instead of stdout")
	from := fset.String("from", "auto", "auto (sink, then history), sink, or history")
	return func(ctx context.Context, pos []string) error {
		if *from != "auto" && *from != "sink" && *from != "history" {
			return fmt.Errorf("--from %q: use auto, sink or history", *from)
		}
		if *from == "history" && *format == "json" && *out != "" {
			if done, err := writeSealed(ctx, cf, pos[0], *out); done || err != nil {
				return err
			}
		}
		ev, source, err := loadEvidence(ctx, cf, pos[0], *from)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "evidence of %s from %s\n", ev.WorkflowID, source)
		return writeEvidence(ev, *format, *out)
	}
}

// loadEvidence finds the evidence of run (a workflow id or a history file).
func loadEvidence(ctx context.Context, cf clientFlags, run, from string) (record.Evidence, string, error) {
	cfg, err := loadConfig(*cf.config)
	if err != nil {
		return record.Evidence{}, "", err
	}
	if isHistoryFile(run) {
		h, err := starter.LoadHistoryFile(run)
		if err != nil {
			return record.Evidence{}, "", err
		}
		dc, err := cfg.DataConverter() // an encrypted history needs the keys
		if err != nil {
			return record.Evidence{}, "", err
		}
		ev, err := starter.EvidenceFromHistory(h, dc)
		return ev, "the history file " + run, err
	}
	store, err := cfg.EvidenceStore()
	if err != nil && from == "sink" {
		return record.Evidence{}, "", err
	}
	if from != "history" && store != nil {
		ev, p, runs, err := evidence.NewSink(store).Load(run)
		if err == nil {
			source := "the evidence sink (" + p + ")"
			if runs > 1 {
				source = fmt.Sprintf("the evidence sink (%s: the latest of %d runs under this workflow id)", p, runs)
			}
			return ev, source, nil
		}
		if from == "sink" || !errors.Is(err, fs.ErrNotExist) {
			return ev, "", fmt.Errorf("evidence sink: %w", err)
		}
	}
	st, c, err := dial(cfg)
	if err != nil {
		return record.Evidence{}, "", err
	}
	defer c.Close()
	ev, err := st.Evidence(ctx, run)
	return ev, "the workflow history on the server", err
}

// writeSealed rebuilds from history the very file the worker stored and
// signed (out, out.sig, and the Markdown beside it), so it verifies like
// the original. done is false for a run that has no sealed record.
func writeSealed(ctx context.Context, cf clientFlags, run, out string) (done bool, err error) {
	cfg, err := loadConfig(*cf.config)
	if err != nil {
		return false, err
	}
	var h *historypb.History
	if isHistoryFile(run) {
		h, err = starter.LoadHistoryFile(run)
	} else {
		st, c, derr := dial(cfg)
		if derr != nil {
			return false, derr
		}
		defer c.Close()
		h, err = st.History(ctx, run)
	}
	if err != nil {
		return false, err
	}
	dc, err := cfg.DataConverter()
	if err != nil {
		return false, err
	}
	rec, ok, err := starter.SealedFromHistory(h, dc)
	if !ok || err != nil {
		return false, err
	}
	var ev record.Evidence
	if err := json.Unmarshal(rec.JSON, &ev); err != nil {
		return false, err
	}
	if err := os.WriteFile(out, rec.JSON, 0o644); err != nil {
		return false, err
	}
	if rec.Signature != "" {
		if err := os.WriteFile(out+".sig", []byte(rec.Signature), 0o644); err != nil {
			return false, err
		}
	}
	// The files beside it are rendered as the worker rendered them, under
	// the name it stored the record by (their digests are in its seal).
	base := strings.TrimSuffix(out, ".json")
	stored := strings.TrimSuffix(path.Base(rec.Location), ".json")
	if filepath.Base(base) != stored {
		fmt.Fprintf(os.Stderr, "note: the worker stored this record as %s.json; its Markdown names that file and its picture %s.svg\n", stored, stored)
	}
	files := ev.Companions(stored)
	for _, suffix := range slices.Sorted(maps.Keys(files)) {
		if err := os.WriteFile(base+suffix, []byte(files[suffix]), 0o644); err != nil {
			return false, err
		}
	}
	fmt.Fprintf(os.Stderr, "the sealed record of %s rebuilt from its history: %s (signature %s.sig, Markdown %s.md, timeline %s.svg); lifeboat evidence verify %s checks it\n", ev.WorkflowID, out, out, base, base, out)
	return true, nil
}

func writeEvidence(ev record.Evidence, format, out string) error {
	var data []byte
	switch format {
	case "json":
		b, err := json.MarshalIndent(ev, "", "  ")
		if err != nil {
			return err
		}
		data = append(b, '\n')
	case "html":
		page, err := ev.HTML()
		if err != nil {
			return err
		}
		data = []byte(page)
	default:
		data = []byte(ev.Markdown())
	}
	if out == "" {
		_, err := os.Stdout.Write(data)
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "evidence written to %s\n", out)
	return nil
}

func cmdEvidenceList(fset *pflag.FlagSet) runner {
	cf := addClientFlags(fset)
	runbook := fset.String("runbook", "", "only this runbook")
	mode := fset.String("mode", "", "only this mode (failover, drill, tabletop)")
	limit := fset.Int("limit", 50, "at most this many runs, newest first")
	return func(ctx context.Context, _ []string) error {
		st, c, _, err := cf.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		runs, err := st.PastRuns(ctx, starter.RunFilter{Runbook: *runbook, Mode: *mode, Limit: *limit})
		if err != nil {
			return err
		}
		if *cf.output == "json" {
			return printJSON(runs)
		}
		if len(runs) == 0 {
			fmt.Println("no finished runs yet")
			return nil
		}
		return printRuns(os.Stdout, runs)
	}
}

// reasonWidth bounds the WHY column: one row per run, however long a reason.
const reasonWidth = 60

// printRuns is the evidence list table: one row per run, a long reason cut
// (with where to read it whole).
func printRuns(w io.Writer, runs []starter.PastRun) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tRUNBOOK\tMODE\tENDED\tOUTCOME\tLEVEL\tRTO ACTUAL/TARGET\tRPO ACTUAL/TARGET\tBREACHED\tWHY")
	cut := false
	why := func(text string) string {
		short := oneLine(text, reasonWidth)
		cut = cut || short != strings.TrimSpace(text)
		return short
	}
	for _, r := range runs {
		if r.Evidence == nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tno evidence\t\t\t\t\t%s\n", r.WorkflowID, r.Runbook, r.Mode, r.Closed.Local().Format("2006-01-02 15:04"), why(r.Problem))
			continue
		}
		e := r.Evidence
		rpo := "—"
		if e.RPOActual != nil {
			rpo = e.RPOActual.Readable()
		}
		reason := ""
		if e.Outcome != "succeeded" {
			reason = why(e.OutcomeReason)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s / %s\t%s / %s\t%s\t%s\n", r.WorkflowID, e.Runbook.Name, e.Mode,
			e.EndedAt.Local().Format("2006-01-02 15:04"), e.Outcome, runbooks.OrDash(e.Level), e.RTOActual.Readable(), e.RTOTarget,
			rpo, e.RPOTarget, runbooks.YesNo(e.RTOBreached), reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cut {
		fmt.Fprintln(w, "… a reason was cut short: lifeboat evidence RUN has it whole")
	}
	return nil
}

// oneLine is text's first line, at most n characters ("…" marks a cut).
func oneLine(text string, n int) string {
	first, _, more := strings.Cut(strings.TrimSpace(text), "\n")
	if r := []rune(first); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	if more {
		return first + " …"
	}
	return first
}

// cmdEvidenceVerify checks stored evidence as an auditor would (see
// evidence.Verify) and exits 1 naming every record and field that fails.
// With a Temporal client configured it also compares the store with what
// the finished runs' histories say was stored there.
func cmdEvidenceVerify(fset *pflag.FlagSet) runner {
	signers := fset.String("signers", "", "allowed_signers file holding the worker's key (lifeboat-worker); default: the config's")
	against := fset.String("temporal", "auto", "cross-check with the finished runs in Temporal: auto (when the config's server answers), yes, or no")
	return func(ctx context.Context, paths []string) error {
		if *against != "auto" && *against != "yes" && *against != "no" {
			return fmt.Errorf("--temporal %q: use auto, yes or no", *against)
		}
		cfg, err := loadConfig(configPath)
		if err != nil {
			return err
		}
		if *signers != "" {
			cfg.Signatures.AllowedSigners = *signers
		}
		keys, err := cfg.Signatures.WorkerKeys()
		if err != nil {
			return err
		}
		if len(paths) == 0 {
			if cfg.Evidence.URL != "" {
				paths = []string{cfg.Evidence.URL}
			} else {
				paths = []string{cfg.EvidenceDir}
			}
		}
		rep, stores, err := verifyPaths(ctx, cfg, paths, keys)
		if err != nil {
			return err
		}
		crossChecked := crossCheck(ctx, cfg, *against, &rep, stores)
		for _, f := range rep.Findings {
			fmt.Println("FAIL " + f.String())
		}
		summary := fmt.Sprintf("%d record(s), %d signed decision(s), %d chain link(s), %d chain position(s)", rep.Records, rep.Approvals, rep.Links, rep.Positions)
		if len(rep.Findings) > 0 {
			fmt.Printf("evidence does NOT verify: %d finding(s) in %s%s\n", len(rep.Findings), summary, crossChecked)
			return exitError{code: 1}
		}
		fmt.Printf("evidence verifies: %s; every worker signature checked against %s%s\n", summary, cfg.Signatures.AllowedSigners, crossChecked)
		return nil
	}
}

// verifyPaths verifies files, directories and s3:// URLs (with the
// config's endpoint and credentials); stores are the whole stores checked.
func verifyPaths(ctx context.Context, cfg worker.Config, paths []string, keys []proof.AllowedSigner) (evidence.Report, []evidence.Store, error) {
	var local []string
	var stores []evidence.Store
	rep := evidence.Report{}
	for _, p := range paths {
		if !strings.HasPrefix(p, "s3://") {
			local = append(local, p)
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				stores = append(stores, evidence.NewDirStore(p))
			}
			continue
		}
		st, err := evidence.NewS3Store(cfg.Evidence.S3Options(p))
		if err != nil {
			return rep, nil, err
		}
		stores = append(stores, st)
	}
	if len(local) > 0 {
		var err error
		if rep, err = evidence.Verify(local, keys); err != nil {
			return rep, nil, err
		}
	}
	for _, st := range stores {
		if _, ok := st.(*evidence.S3Store); !ok {
			continue
		}
		one, err := evidence.VerifyStore(ctx, st, keys)
		if err != nil {
			return rep, nil, err
		}
		rep.Merge(one)
	}
	return rep, stores, nil
}

// crossCheck compares each whole store with Temporal's finished runs and
// says how it went, for the summary line.
func crossCheck(ctx context.Context, cfg worker.Config, against string, rep *evidence.Report, stores []evidence.Store) string {
	if against == "no" || len(stores) == 0 {
		return "; not cross-checked with Temporal"
	}
	st, c, err := dial(cfg)
	if err == nil {
		defer c.Close()
		var stored []evidence.StoredByRun
		if stored, err = st.StoredRecords(ctx); err == nil {
			for _, s := range stores {
				rep.CrossCheck(ctx, s, stored)
			}
			return fmt.Sprintf("; %d record(s) cross-checked with the finished runs in Temporal (%s, namespace %s, task queue %s)",
				rep.CrossChecked, cfg.Temporal.Address, cfg.Temporal.Namespace, cfg.Temporal.TaskQueue)
		}
	}
	if against == "yes" {
		rep.Findings = append(rep.Findings, evidence.Finding{File: cfg.Temporal.Address, Problem: "cannot cross-check with Temporal: " + err.Error()})
		return ""
	}
	return "; not cross-checked with Temporal (" + oneLine(err.Error(), 120) + ")"
}
