package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// execute runs the lifeboat command line args in-process (as main does, but
// returning the error instead of exiting).
func execute(args ...string) error {
	root := rootCommand()
	root.SetArgs(args)
	return root.ExecuteContext(context.Background())
}

// executeOut is execute with cobra's own output (help, completion) captured.
func executeOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := rootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestHelpIsNotAnError(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"approve", "--help"}, {"drill", "schedule", "-h"}, {"evidence", "list", "--help"}} {
		out, err := executeOut(t, args...)
		if err != nil {
			t.Errorf("lifeboat %s: %v (help must exit 0)", strings.Join(args, " "), err)
		}
		if !strings.Contains(out, "Usage:") {
			t.Errorf("lifeboat %s printed no usage:\n%s", strings.Join(args, " "), out)
		}
	}
	out, _ := executeOut(t, "approve", "--help")
	for _, want := range []string{"approve RUN STEP --as NAME", "--comment", "--signal", "--config"} {
		if !strings.Contains(out, want) {
			t.Errorf("approve --help lacks %q:\n%s", want, out)
		}
	}
}

func TestWrongArgumentsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"status"}, {"approve", "run-1"}, {"validate"}, {"status", "a", "b"}, {"status", "run-1", "--no-such-flag"}} {
		err := execute(args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("lifeboat %s: want a usage error (exit 2), got %v", strings.Join(args, " "), err)
		}
	}
}

// A wrong count of arguments says, in the usage line's words, what the
// command takes and what it got.
func TestAWrongCountOfArgumentsSaysWhatTheCommandTakes(t *testing.T) {
	for args, want := range map[string]string{
		"approve run-1":    "expects RUN STEP; got 1: run-1",
		"status":           "expects RUN; got none",
		"version extra":    "expects no arguments; got 1: extra",
		"validate":         "expects FILE|DIR...; got none",
		"status run-1 x y": "expects RUN; got 3: run-1 x y",
	} {
		err := execute(strings.Fields(args)...)
		require.Error(t, err, args)
		assert.Equal(t, want, err.Error(), args)
	}
}

// -o is --output's shorthand, and an output a command cannot print is
// refused when the command line is read, naming the ones it can — never
// printed as the default (evidence --output yaml printed Markdown).
func TestOutputIsCheckedAndHasItsShorthand(t *testing.T) {
	out := captureStdout(t, func() {
		require.NoError(t, execute("plan", "../../runbooks/examples/case-management-region-failover.yaml", "-o", "json"))
	})
	assert.True(t, strings.HasPrefix(strings.TrimSpace(out), "{"), out)
	for args, want := range map[string]string{
		"evidence run-1 --output yaml": "use md or json",
		"evidence run-1 --format yaml": "use md or json",
		"status run-1 -o yaml":         "use text or json",
		"validate x.yaml -o md":        "use text or json",
	} {
		err := execute(strings.Fields(args)...)
		var ue usageError
		require.True(t, errors.As(err, &ue), "%s: %v", args, err)
		assert.Contains(t, err.Error(), want, args)
	}
}

// A refusal of the name --as defaulted to says where that name came from.
func TestARefusalOfTheDefaultNameSaysWhereItCameFrom(t *testing.T) {
	t.Setenv("LIFEBOAT_USER", "")
	t.Setenv("USER", "root")
	refused := &starter.RefusedError{Message: "root is not in the approver groups"}
	fs := pflag.NewFlagSet("approve", pflag.ContinueOnError)
	fs.String("as", defaultUser(), "")
	err := withAsSource(refused, fs)
	assert.Equal(t, "refused: root is not in the approver groups (--as was not given, so the name was root from $USER: pass --as NAME)", err.Error())
	assert.ErrorAs(t, err, &refused, "still a refusal")
	require.NoError(t, fs.Parse([]string{"--as", "root"}))
	assert.Equal(t, refused, withAsSource(refused, fs), "named on the command line: nothing to add")
}

// lifeboat --version answers as lifeboat version does.
func TestVersionFlag(t *testing.T) {
	out, err := executeOut(t, "--version")
	require.NoError(t, err)
	assert.Equal(t, versionLine()+"\n", out)
}

// Flags may come before or after the positional arguments.
func TestFlagsBeforeOrAfterArguments(t *testing.T) {
	book := "../../runbooks/examples/case-management-region-failover.yaml"
	for _, args := range [][]string{{"plan", "--output", "json", book}, {"plan", book, "--output", "json"}, {"plan", book, "--output=json"}} {
		out := captureStdout(t, func() {
			if err := execute(args...); err != nil {
				t.Errorf("lifeboat %s: %v", strings.Join(args, " "), err)
			}
		})
		if !strings.HasPrefix(strings.TrimSpace(out), "{") {
			t.Errorf("lifeboat %s did not print JSON:\n%s", strings.Join(args, " "), out)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, err := executeOut(t, "completion", shell)
		if err != nil || !strings.Contains(out, "lifeboat") || len(out) < 500 {
			t.Errorf("lifeboat completion %s: %v\n%.200s", shell, err, out)
		}
	}
}

// Runbook names complete from the CLI's catalog, with no file names.
func TestRunbookNamesComplete(t *testing.T) {
	t.Setenv("LIFEBOAT_CATALOG", "../../runbooks/examples")
	out, err := executeOut(t, "__complete", "drill", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"case-management-region-failover\trunbook, RTO", "region-ca-central-1-loss\trecovery plan", "schedule\t", ":4"} {
		if !strings.Contains(out, want) {
			t.Errorf("drill <TAB> lacks %q:\n%s", want, out)
		}
	}
}

func TestVersion(t *testing.T) {
	out := captureStdout(t, func() {
		if err := execute("version"); err != nil {
			t.Fatal(err)
		}
	})
	if !strings.HasPrefix(out, "lifeboat ") || !strings.Contains(out, "temporal sdk v1.") {
		t.Fatalf("version: %q", out)
	}
}

// captureStdout runs f with os.Stdout going to a pipe and returns what f printed.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r)
		done <- b.String()
	}()
	f()
	os.Stdout = old
	_ = w.Close()
	return <-done
}

// status is read at 3 AM: rounded durations, a finished run says it
// finished (not what is "left"), the waiting line names who may approve and
// a refusal shows.
func TestStatusReadsAtAGlance(t *testing.T) {
	deadline := time.Date(2026, 11, 22, 3, 0, 0, 0, time.Local)
	started := deadline.Add(-time.Hour)
	s := workflows.Status{WorkflowID: "run-1", Runbook: "book", Version: 2, Mode: "failover", State: "awaiting-approval", Layer: "edge",
		RTO: runbooks.Duration(time.Hour), Deadline: deadline, ProjectedFinish: deadline.Add(-time.Minute),
		Steps: []workflows.StepStatus{
			{ID: "check", Layer: "network", Action: "http.check", State: "succeeded", Attempts: 1, Started: &started, Duration: runbooks.Duration(1827075316)},
			{ID: "shift", Layer: "edge", Action: "cloudflare.dnsSwitch", State: "awaiting-approval"},
		},
		Pending: []workflows.Pending{{Step: "shift", Kind: "approval", Message: "step shift needs 1 approval(s) from ic (have 0); may approve: alice, bob: lifeboat approve run-1 shift --as NAME"}},
		Refused: "an approve signal for step shift from mallory was refused at 02:03:00 UTC: mallory is not in the approver groups.",
	}
	var b strings.Builder
	printStatus(&b, s, deadline.Add(-30*time.Minute))
	out := b.String()
	assert.Contains(t, out, " 1.827s ")
	assert.NotContains(t, out, "1.827075316s")
	assert.Contains(t, out, "30m0s left")
	assert.Contains(t, out, "WAITING: step shift needs 1 approval(s) from ic (have 0); may approve: alice, bob")
	assert.Contains(t, out, "REFUSED: an approve signal for step shift from mallory was refused")

	s.Finished, s.State, s.Pending, s.Refused = true, "succeeded", nil, ""
	s.RTORemaining = runbooks.Duration(51*time.Minute + 500*time.Millisecond)
	b.Reset()
	printStatus(&b, s, deadline.Add(2*time.Hour))
	out = b.String()
	assert.Contains(t, out, "RTO 1h: finished in 9m, 51m1s before the deadline")
	assert.NotContains(t, out, "layer edge", "a finished run is in no layer")
	assert.NotContains(t, out, "left")
	assert.NotContains(t, out, "BREACHED")
}

// evidence list keeps one row per run however long (or many-lined) a reason is.
func TestEvidenceListKeepsOneRowPerRun(t *testing.T) {
	long := "cannot start: runbook b cannot run on this worker:\n  cloudflare.dnsSwitch (spec.layers.edge[0], step shift): no Cloudflare token configured: set cloudflare.tokenEnv"
	runs := []starter.PastRun{
		{WorkflowID: "run-1", Runbook: "b", Mode: "failover", Problem: long},
		{WorkflowID: "run-2", Evidence: &record.Evidence{WorkflowID: "run-2", Runbook: record.RunbookRef{Name: "b"}, Mode: "drill",
			Outcome: "failed", OutcomeReason: strings.Repeat("step restore failed: velero restore PartiallyFailed ", 5)}},
	}
	var b strings.Builder
	require.NoError(t, printRuns(&b, runs))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 4, "header, two rows, the pointer:\n%s", b.String())
	assert.True(t, strings.HasPrefix(lines[1], "run-1"), lines[1])
	assert.Contains(t, lines[1], "cannot start: runbook b cannot run on this worker: …")
	assert.True(t, strings.HasPrefix(lines[2], "run-2"), lines[2])
	assert.Contains(t, lines[2], "…")
	assert.Less(t, len([]rune(lines[2])), 250)
	assert.Equal(t, "… a reason was cut short: lifeboat evidence RUN has it whole", lines[3])
}

// --config is one persistent flag: it may come before or after the
// command's name, and LIFEBOAT_CONFIG is its default.
func TestConfigIsOneFlagBeforeOrAfterTheCommand(t *testing.T) {
	missing := t.TempDir() + "/nowhere.yaml"
	for _, args := range [][]string{{"--config", missing, "actions"}, {"actions", "--config", missing}, {"--config=" + missing, "plan", "x"}, {"evidence", "verify", "--config", missing}} {
		err := execute(args...)
		require.Error(t, err, args)
		assert.Contains(t, err.Error(), "config "+missing, "lifeboat %s read another config", strings.Join(args, " "))
	}
	t.Setenv("LIFEBOAT_CONFIG", missing)
	err := execute("actions")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "config "+missing)
}

// Every command's help shows examples, and each example runs the command
// it documents with flags the command has.
func TestEveryHelpHasExamplesThatParse(t *testing.T) {
	root := rootCommand()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c == root || c.Hidden {
			return
		}
		path := strings.TrimPrefix(c.CommandPath(), "lifeboat ")
		if c.Example == "" {
			t.Errorf("lifeboat %s --help has no Examples (cmd/lifeboat/examples.go)", path)
			return
		}
		for _, line := range strings.Split(c.Example, "\n") {
			line = strings.TrimSpace(strings.SplitN(strings.SplitN(line, "#", 2)[0], "|", 2)[0])
			if !strings.HasPrefix(line, "lifeboat ") {
				continue // a line that runs something else (source <(…))
			}
			cmd, args, err := root.Find(strings.Fields(line)[1:])
			require.NoError(t, err, line)
			for _, a := range args {
				if strings.HasPrefix(a, "--") {
					name := strings.SplitN(a[2:], "=", 2)[0]
					if cmd.Flags().Lookup(name) == nil && cmd.InheritedFlags().Lookup(name) == nil {
						t.Errorf("lifeboat %s example %q: lifeboat %s has no flag --%s", path, line, cmd.Name(), name)
					}
				}
			}
		}
	}
	walk(root)
	for _, want := range []string{"drill", "approve", "evidence verify"} {
		out, err := executeOut(t, append(strings.Fields(want), "--help")...)
		require.NoError(t, err)
		assert.Contains(t, out, "Examples:\n  lifeboat "+want, want)
	}
}

// validate --mode drill shows what a drill start would refuse, for a
// runbook without spec.drill too (plain validate says ok: a failover of it
// is fine).
func TestValidateInDrillModeShowsWhatADrillWouldRefuse(t *testing.T) {
	book := t.TempDir() + "/edge.yaml"
	require.NoError(t, os.WriteFile(book, []byte(`apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: edge-only, version: 1}
spec:
  scope: application
  objectives: {rto: 30m}
  layers:
    edge:
      - id: dns
        action: cloudflare.dnsSwitch
        with: {zone: example.com, record: shop.example.com, to: dr.example.com}
`), 0o644))
	var err error
	out := captureStdout(t, func() { err = execute("validate", book) })
	require.NoError(t, err, out)
	assert.Contains(t, out, "ok    "+book)
	out = captureStdout(t, func() { err = execute("validate", "--mode", "drill", book) })
	var ex exitError
	require.True(t, errors.As(err, &ex), "exit 1: %v", err)
	assert.Contains(t, out, "spec.layers.edge[0]: a drill would be refused: cloudflare.dnsSwitch changes edge/DNS: in a drill, add dns to spec.drill.skip")
	var ue usageError
	assert.True(t, errors.As(execute("validate", "--mode", "tabletop", book), &ue), "an unknown mode is a usage error")
}
