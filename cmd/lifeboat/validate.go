package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/spf13/pflag"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/worker"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// fileReport is validate's JSON output for one file.
type fileReport struct {
	File     string            `json:"file"`
	Runbook  string            `json:"runbook,omitempty"`
	Problems runbooks.Problems `json:"problems"`
}

func cmdValidate(fs *pflag.FlagSet) runner {
	output := outputFlag(fs, "text", "json")
	mode := &choice{value: workflows.ModeFailover, choices: []string{workflows.ModeFailover, workflows.ModeDrill}}
	fs.Var(mode, "mode", "failover, or drill: also what a drill start would refuse (spec.drill or not)")
	return func(_ context.Context, paths []string) error {
		schema := activities.Catalogue()
		// Plans are checked against the runbooks validated with them.
		cat, _ := runbooks.LoadCatalog(paths...)
		var reports []fileReport
		names := map[string]string{}
		for _, p := range paths {
			files, err := runbooks.RunbookFiles(p)
			if err != nil {
				return err
			}
			if len(files) == 0 {
				reports = append(reports, fileReport{File: p, Problems: runbooks.Problems{{File: p, Message: "no *.yaml runbooks in this directory"}}})
			}
			for _, f := range files {
				rep := fileReport{File: f}
				rb, plan, err := runbooks.LoadDocument(f)
				var name string
				var line int
				switch {
				case err != nil:
					reports = append(reports, fileReport{File: f, Problems: asProblems(err, f)})
					continue
				case plan != nil:
					name, line = plan.Metadata.Name, plan.LineOf("metadata.name")
					rep.Problems = runbooks.ValidatePlan(plan, cat)
				default:
					name, line = rb.Metadata.Name, rb.LineOf("metadata.name")
					rep.Problems = runbooks.Validate(rb, schema)
					if mode.value == workflows.ModeDrill && rb.Spec.Drill == nil {
						// Validate checks a drill's scope only for a runbook with
						// spec.drill; a drill start checks it for every runbook.
						rep.Problems = append(rep.Problems, drillRefusals(rb, schema)...)
					}
				}
				rep.Runbook = name
				for i := range rep.Problems {
					rep.Problems[i].File = f
				}
				if prev, dup := names[name]; dup && name != "" {
					rep.Problems = append(rep.Problems, runbooks.Problem{File: f, Line: line, Path: "metadata.name",
						Message: fmt.Sprintf("name %q is also used by %s: names are unique in a catalog", name, prev)})
				}
				names[name] = f
				reports = append(reports, rep)
			}
		}
		failed := false
		for _, r := range reports {
			failed = failed || len(r.Problems.Errors()) > 0
		}
		if *output == "json" {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(reports)
		} else {
			for _, r := range reports {
				for _, p := range r.Problems {
					fmt.Println(p.String())
				}
				errs, warns := len(r.Problems.Errors()), len(r.Problems.Warnings())
				if errs == 0 {
					fmt.Printf("ok    %s (%s)%s\n", r.File, r.Runbook, plural(warns, " warning"))
				} else {
					fmt.Printf("FAIL  %s: %d error%s%s\n", r.File, errs, pluralS(errs), plural(warns, " warning"))
				}
			}
		}
		if failed {
			return exitError{1}
		}
		return nil
	}
}

// drillRefusals are what a drill start of rb would refuse, each saying so.
func drillRefusals(rb *runbooks.Runbook, schema runbooks.Schema) runbooks.Problems {
	out := runbooks.ValidateDrill(rb, schema).Errors()
	for i := range out {
		out[i].Message = "a drill would be refused: " + out[i].Message
	}
	return out
}

func asProblems(err error, file string) runbooks.Problems {
	if ps, ok := err.(runbooks.Problems); ok {
		return ps
	}
	return runbooks.Problems{{File: file, Message: err.Error()}}
}

func plural(n int, what string) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d%s%s", n, what, pluralS(n))
}

func pluralS(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func cmdPlan(fs *pflag.FlagSet) runner {
	output := outputFlag(fs, "text", "json")
	return func(_ context.Context, pos []string) error {
		if plan, cat, err := loadPlan(pos[0], configPath); err != nil || plan != nil {
			if err != nil {
				return err
			}
			if errs := runbooks.ValidatePlan(plan, cat).Errors(); len(errs) > 0 {
				return fmt.Errorf("the recovery plan is invalid; fix these first:\n%s", errs.Error())
			}
			return printPlan(runbooks.MakePlanView(plan, cat.MemberRefs(plan)), *output)
		}
		rb, err := loadRunbook(pos[0], configPath)
		if err != nil {
			return err
		}
		if errs := runbooks.Validate(rb, activities.Catalogue()).Errors(); len(errs) > 0 {
			return fmt.Errorf("the runbook is invalid; fix these first:\n%s", errs.Error())
		}
		return printPlan(runbooks.MakePlan(rb), *output)
	}
}

// printPlan prints a runbook's or a recovery plan's plan as text or JSON.
func printPlan(p interface{ WriteText(io.Writer) }, output string) error {
	if output == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	p.WriteText(os.Stdout)
	return nil
}

// loadPlan reads ref as a recovery plan with the catalog its members come
// from: a plan file is read with the runbooks of its own directory (and the
// configured catalog); a NAME is looked up in the configured catalog. A nil
// plan and nil error: ref is not a plan.
func loadPlan(ref, configPath string) (*runbooks.RecoveryPlan, *runbooks.Catalog, error) {
	if data, err := os.ReadFile(ref); err == nil {
		if runbooks.KindOf(data) != runbooks.PlanKind {
			return nil, nil, nil
		}
		dirs := []string{filepath.Dir(ref)}
		if cfg, err := loadConfig(configPath); err == nil && configPath != "" {
			dirs = append(dirs, cfg.Catalog...)
		}
		cat, err := runbooks.LoadCatalog(dirs...)
		if cat == nil {
			return nil, nil, err
		}
		_, plan, err := runbooks.LoadDocument(ref)
		return plan, cat, err
	}
	if strings.HasSuffix(ref, ".yaml") || strings.HasSuffix(ref, ".yml") {
		return nil, nil, nil
	}
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, nil, err
	}
	cat, err := runbooks.LoadCatalog(cfg.Catalog...)
	if cat == nil {
		return nil, nil, err
	}
	if !cat.IsPlan(ref) {
		return nil, nil, nil
	}
	e, err := cat.Plan(ref)
	return e.Plan, cat, err
}

// loadRunbook reads a runbook file, or finds NAME in the configured catalog.
func loadRunbook(ref, configPath string) (*runbooks.Runbook, error) {
	if _, err := os.Stat(ref); err == nil || strings.HasSuffix(ref, ".yaml") || strings.HasSuffix(ref, ".yml") {
		rb, _, err := runbooks.LoadFile(ref)
		return rb, err
	}
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, err
	}
	cat, err := runbooks.LoadCatalog(cfg.Catalog...)
	if cat == nil {
		return nil, err
	}
	e, err := cat.Get(ref)
	if err != nil {
		return nil, err
	}
	return e.Runbook, nil
}

// cmdActions lists the catalogue, each action with whether a worker with
// this config runs it (or the configuration it lacks).
func cmdActions(fs *pflag.FlagSet) runner {
	return func(_ context.Context, _ []string) error {
		cfg, err := loadConfig(configPath)
		if err != nil {
			return err
		}
		reg := worker.Registry(cfg)
		for _, s := range reg.Specs() {
			impl := "runs on this worker"
			if !reg.Implemented(s.Name) {
				impl = "tabletop only here: " + reg.WhyNotImplemented(s.Name)
			}
			fmt.Printf("%s — %s [%s]\n", s.Name, s.Doc, impl)
			drill := string(s.Drill)
			if len(s.DrillOverrides) > 0 {
				drill += " (" + strings.Join(s.DrillOverrides, ", ") + ")"
			}
			fmt.Printf("    changes: %s; in a drill: %s\n", s.Effect, drill)
			for _, a := range s.Args {
				req := ""
				if a.Required {
					req = " (required)"
				}
				fmt.Printf("    %-18s %-18s %s%s\n", a.Name, a.Type, a.Doc, req)
			}
			for _, o := range s.Outputs {
				name := "outputs." + o.Name
				if o.Name == runbooks.OutputAny {
					name = "outputs.NAME"
				}
				fmt.Printf("    %-37s %s\n", name, o.Doc)
			}
		}
		return nil
	}
}
