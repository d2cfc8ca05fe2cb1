// Package terraform implements terraform.apply and terraform.output with
// terraform-exec. Failures are classified into typed errors callers can
// errors.As: a missing variable or an invalid configuration cannot be fixed by
// retrying; a held state lock can.
package terraform

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"
	tfjson "github.com/hashicorp/terraform-json"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// MissingVarError: a required input variable has no value.
type MissingVarError struct {
	Dir, Var string
}

func (e *MissingVarError) Error() string {
	return fmt.Sprintf("terraform in %s: variable %q is required and has no value: add it under with.vars (or a var file) of the step", e.Dir, e.Var)
}

// ConfigInvalidError: the configuration does not validate.
type ConfigInvalidError struct {
	Dir         string
	Diagnostics []string
}

func (e *ConfigInvalidError) Error() string {
	return fmt.Sprintf("terraform configuration in %s is invalid: %s — fix it in git and retry the step", e.Dir, strings.Join(e.Diagnostics, "; "))
}

// StateLockedError: another run holds the state lock (retryable).
type StateLockedError struct {
	Dir, Detail string
}

func (e *StateLockedError) Error() string {
	return fmt.Sprintf("terraform state in %s is locked by another run (%s); retrying — if nobody runs terraform there, unlock it with terraform force-unlock", e.Dir, e.Detail)
}

// Actions runs terraform. Binary is the terraform executable; BaseDir resolves
// relative directories.
type Actions struct {
	Binary  string
	BaseDir string
}

// ApplyArgs are terraform.apply's arguments.
type ApplyArgs struct {
	Dir      string         `json:"dir"`
	Vars     map[string]any `json:"vars"`
	VarFiles []string       `json:"varFiles"`
}

// OutputArgs are terraform.output's arguments.
type OutputArgs struct {
	Dir   string   `json:"dir"`
	Names []string `json:"names"`
}

func (a *Actions) terraform(dir string) (*tfexec.Terraform, string, error) {
	if !filepath.IsAbs(dir) && a.BaseDir != "" {
		dir = filepath.Join(a.BaseDir, dir)
	}
	bin := a.Binary
	if bin == "" {
		bin = "terraform"
	}
	tf, err := tfexec.NewTerraform(dir, bin)
	if err != nil {
		return nil, dir, temporal.NewNonRetryableApplicationError(fmt.Sprintf("terraform: %v (set terraform.binary in the worker config; relative dirs start at baseDir)", err), "ConfigError", nil)
	}
	return tf, dir, nil
}

// Apply runs init, validate and apply, and returns the outputs (sensitive
// values are never returned). Re-applying an applied directory changes nothing.
func (a *Actions) Apply(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args ApplyArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	tf, dir, err := a.terraform(args.Dir)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	stop := keepAlive(ctx, "terraform apply in "+dir)
	defer stop()
	if err := a.prepare(ctx, tf, dir); err != nil {
		return runbooks.StepResult{}, err
	}
	opts := []tfexec.ApplyOption{}
	for _, k := range sortedKeys(args.Vars) {
		opts = append(opts, tfexec.Var(k+"="+varValue(args.Vars[k])))
	}
	for _, f := range args.VarFiles {
		opts = append(opts, tfexec.VarFile(f))
	}
	start := time.Now()
	if err := tf.Apply(ctx, opts...); err != nil {
		return runbooks.StepResult{}, classify(dir, err)
	}
	outputs, err := outputs(ctx, tf, dir, nil)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	return runbooks.StepResult{Summary: fmt.Sprintf("applied %s in %s (%d output(s))", args.Dir, time.Since(start).Round(time.Second), len(outputs)), Outputs: outputs}, nil
}

// Output reads the outputs of an applied directory.
func (a *Actions) Output(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args OutputArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	tf, dir, err := a.terraform(args.Dir)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	if err := tf.Init(ctx, tfexec.Upgrade(false)); err != nil {
		return runbooks.StepResult{}, classify(dir, err)
	}
	out, err := outputs(ctx, tf, dir, args.Names)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	return runbooks.StepResult{Summary: fmt.Sprintf("%d output(s) of %s", len(out), args.Dir), Outputs: out}, nil
}

// prepare runs init and validate; an invalid configuration is a ConfigInvalidError.
func (a *Actions) prepare(ctx context.Context, tf *tfexec.Terraform, dir string) error {
	if err := tf.Init(ctx, tfexec.Upgrade(false)); err != nil {
		return classify(dir, err)
	}
	v, err := tf.Validate(ctx)
	if err != nil {
		return classify(dir, err)
	}
	if !v.Valid {
		return a.prepareDiagnostics(dir, v)
	}
	return nil
}

// prepareDiagnostics is an invalid configuration's ConfigInvalidError.
func (a *Actions) prepareDiagnostics(dir string, v *tfjson.ValidateOutput) error {
	var diags []string
	for _, d := range v.Diagnostics {
		where := ""
		if d.Range != nil {
			where = fmt.Sprintf("%s:%d: ", d.Range.Filename, d.Range.Start.Line)
		}
		diags = append(diags, strings.TrimSpace(where+d.Summary+": "+lastLines(d.Detail, 4)))
	}
	return nonRetryable(&ConfigInvalidError{Dir: dir, Diagnostics: diags})
}

func outputs(ctx context.Context, tf *tfexec.Terraform, dir string, names []string) (map[string]any, error) {
	meta, err := tf.Output(ctx)
	if err != nil {
		return nil, classify(dir, err)
	}
	out := map[string]any{}
	for name, m := range meta {
		if m.Sensitive {
			out[name] = runbooks.SensitiveOutput
			continue
		}
		var v any
		if err := json.Unmarshal(m.Value, &v); err != nil {
			return nil, err
		}
		out[name] = v
	}
	if len(names) > 0 {
		picked := map[string]any{}
		var missing []string
		for _, n := range names {
			v, ok := out[n]
			if !ok {
				missing = append(missing, n)
			}
			picked[n] = v
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("terraform.output: %s has no output %s (has terraform.apply run there?)", dir, strings.Join(missing, ", "))
		}
		out = picked
	}
	return out, nil
}

var (
	reMissingVar = regexp.MustCompile(`input variable "([^"]+)" is not set`)
	reLocked     = regexp.MustCompile(`(?s)Error acquiring the state lock(.*)`)
)

// classify maps terraform's stderr to a typed error: missing variables and
// invalid configuration are non-retryable; a held lock and the rest are retryable.
func classify(dir string, err error) error {
	msg := err.Error()
	if m := reMissingVar.FindStringSubmatch(msg); m != nil || strings.Contains(msg, "No value for required variable") {
		name := "?"
		if m != nil {
			name = m[1]
		}
		return nonRetryable(&MissingVarError{Dir: dir, Var: name})
	}
	if m := reLocked.FindStringSubmatch(msg); m != nil {
		return &StateLockedError{Dir: dir, Detail: firstLine(strings.TrimSpace(m[1]))}
	}
	for _, s := range []string{"Unsupported argument", "Invalid reference", "Argument or block definition required", "Unsupported block type", "Missing required argument", "Invalid expression"} {
		if strings.Contains(msg, s) {
			return nonRetryable(&ConfigInvalidError{Dir: dir, Diagnostics: []string{lastLines(msg, 6)}})
		}
	}
	return fmt.Errorf("terraform in %s: %s", dir, lastLines(msg, 8))
}

// nonRetryable wraps a typed error as a non-retryable application error whose
// type is the Go type name, so errors.As still finds it in the activity.
func nonRetryable(err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), fmt.Sprintf("%T", err), err)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// Terraform's diagnostics quote values and source: "│ var.db_password is
// "hunter2"" (the values an expression used), "5:   password = "…"" (the
// source line), and the detail ("cannot convert "hunter2" to number").
// Value and source lines are dropped and quoted text in details hidden; the
// summary ("Error: …") and the place ("on main.tf line 5, in output "x"")
// stay.
var (
	reQuoted     = regexp.MustCompile(`"[^"]*"`)
	reValueLine  = regexp.MustCompile(`^[│├─\s]*\S+ is \S`)
	reSourceLine = regexp.MustCompile(`^\d+:\s`)
	reRuleLine   = regexp.MustCompile(`^[│├─\s]+$`)
)

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	var keep []string
	for _, l := range lines {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "│"))
		if l == "" || strings.HasPrefix(l, "╷") || strings.HasPrefix(l, "╵") ||
			reValueLine.MatchString(l) || reSourceLine.MatchString(l) || reRuleLine.MatchString(l) {
			continue
		}
		if !strings.HasPrefix(l, "Error:") && !strings.HasPrefix(l, "Warning:") && !strings.HasPrefix(l, "on ") {
			l = reQuoted.ReplaceAllString(l, `"…"`)
		}
		keep = append(keep, l)
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, " ")
}

func varValue(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// keepAlive heartbeats every 10s while a long terraform command runs.
func keepAlive(ctx context.Context, what string) func() {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, what)
			}
		}
	}()
	return func() { close(done) }
}
