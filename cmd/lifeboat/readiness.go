package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/pflag"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/activities/velero"
	"github.com/lifeboat-dr/lifeboat/readiness"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/worker"
)

// cmdReadiness prints the seed 004 §29 scorecard rows lifeboat can derive.
func cmdReadiness(fs *pflag.FlagSet) runner {
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON (same as --output json)")
	only := fs.String("runbook", "", "only this runbook")
	critical := fs.Duration("critical-rto", readiness.DefaultCriticalRTO, "a runbook with an RTO at most this protects a critical system")
	noBackups := fs.Bool("no-backup-check", false, "do not ask Velero for the latest backups (use the last runs' RPO instead)")
	return func(ctx context.Context, _ []string) error {
		st, c, cfg, err := cf.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		inputs, err := readinessInputs(ctx, cfg, st, *only, !*noBackups)
		if err != nil {
			return err
		}
		now := time.Now()
		var systems []readiness.System
		for _, in := range inputs {
			systems = append(systems, readiness.Score(in, now, *critical))
		}
		if *asJSON || *cf.output == "json" {
			return printJSON(systems)
		}
		fmt.Print(readiness.Text(systems))
		return nil
	}
}

// readinessInputs gathers the facts of every catalog runbook (or one).
func readinessInputs(ctx context.Context, cfg worker.Config, st *starter.Starter, only string, checkBackups bool) ([]readiness.Input, error) {
	cat, loadErr := runbooks.LoadCatalog(cfg.Catalog...)
	if cat == nil {
		return nil, fmt.Errorf("reading the catalog %v: %w", cfg.Catalog, loadErr)
	}
	var inputs []readiness.Input
	if ps, ok := loadErr.(runbooks.Problems); ok && only == "" {
		byFile := map[string][]string{}
		for _, p := range ps {
			byFile[p.File] = append(byFile[p.File], p.String())
		}
		for f, errs := range byFile {
			inputs = append(inputs, readiness.Input{Name: filepath.Base(f), File: f, Errors: errs})
		}
	}
	names := cat.Names()
	if only != "" {
		if _, err := cat.Get(only); err != nil {
			return nil, err
		}
		names = []string{only}
	}
	schema := activities.Catalogue()
	for _, name := range names {
		e, _ := cat.Get(name)
		in := readiness.Input{Name: name, File: e.Path, Runbook: e.Runbook, Hash: e.Hash}
		for _, p := range runbooks.Validate(e.Runbook, schema).Errors() {
			in.Errors = append(in.Errors, p.String())
		}
		runs, err := st.PastRuns(ctx, starter.RunFilter{Runbook: name, Limit: 100})
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			if r.Evidence != nil {
				in.Runs = append(in.Runs, *r.Evidence)
			}
		}
		in.Backup = latestBackup(ctx, cfg, e.Runbook, checkBackups)
		inputs = append(inputs, in)
	}
	sort.SliceStable(inputs, func(i, j int) bool { return inputs[i].Name < inputs[j].Name })
	return inputs, nil
}

// latestBackup asks velero.latestBackup for the newest backup of the schedule
// the runbook restores from (nil when it names none).
func latestBackup(ctx context.Context, cfg worker.Config, rb *runbooks.Runbook, check bool) *readiness.Backup {
	var args map[string]any
	for _, s := range rb.AllSteps() {
		if s.Step.Action == activities.VeleroLatestBackup || (s.Step.Action == activities.VeleroRestore && s.Step.With["schedule"] != nil) {
			args = map[string]any{"target": s.Step.With["target"], "schedule": s.Step.With["schedule"]}
			if ns := s.Step.With["veleroNamespace"]; ns != nil {
				args["veleroNamespace"] = ns
			}
			break
		}
	}
	if args == nil {
		return nil
	}
	b := &readiness.Backup{Schedule: fmt.Sprint(args["schedule"])}
	switch {
	case !check:
		b.Err = "--no-backup-check"
		return b
	case cfg.Kube.Kubeconfig == "" && os.Getenv("KUBECONFIG") == "":
		b.Err = "no cluster access configured (kube.kubeconfig in the config, or KUBECONFIG)"
		return b
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v := &velero.Actions{Source: &kube.KubeconfigSource{Default: cfg.Kube.Kubeconfig, Contexts: cfg.Kube.Contexts}}
	// RPO 0: no age limit, so the age is reported rather than refused.
	res, err := v.LatestBackup(ctx, runbooks.StepInput{Runbook: rb.Metadata.Name, StepID: "readiness", Args: args, Targets: rb.Spec.Targets})
	if err != nil {
		b.Err = err.Error()
		return b
	}
	b.Name = res.RecoveryPointName
	if res.RecoveryPoint != nil {
		b.Age = time.Since(*res.RecoveryPoint)
	}
	return b
}

// cmdInvariant prints a runbook's recovery invariant, or what is missing.
func cmdInvariant(fs *pflag.FlagSet) runner {
	cf := addClientFlags(fs)
	return func(ctx context.Context, pos []string) error {
		st, c, cfg, err := cf.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		var current record.RunbookRef
		if cat, _ := runbooks.LoadCatalog(cfg.Catalog...); cat != nil {
			if e, err := cat.Get(pos[0]); err == nil {
				current = record.RunbookRef{Name: pos[0], Version: e.Runbook.Metadata.Version, Hash: e.Hash}
			}
		}
		runs, err := st.PastRuns(ctx, starter.RunFilter{Runbook: pos[0], Mode: "drill", Limit: 100})
		if err != nil {
			return err
		}
		var evs []record.Evidence
		for _, r := range runs {
			if r.Evidence != nil {
				evs = append(evs, *r.Evidence)
			}
		}
		sentence, ok, missing := readiness.Invariant(pos[0], current, evs)
		if *cf.output == "json" {
			if err := printJSON(map[string]any{"runbook": pos[0], "established": ok, "invariant": sentence, "missing": missing}); err != nil {
				return err
			}
		} else {
			if ok {
				fmt.Println(sentence)
			} else {
				fmt.Printf("The recovery invariant of %s is not established:\n", pos[0])
			}
			for _, m := range missing {
				fmt.Printf("  - %s\n", m)
			}
		}
		if !ok {
			return exitError{1}
		}
		return nil
	}
}
