package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
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
