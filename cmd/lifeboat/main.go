// Command lifeboat executes disaster-recovery restore runbooks on Temporal.
// This package only parses flags; the work is in runbooks, starter, worker
// and devserver.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"sort"
	"strings"
	"syscall"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

// command is one subcommand.
type command struct {
	usage string
	doc   string
	run   func(ctx context.Context, args []string) error
}

var commands map[string]command

func init() {
	initDrillSubcommands()
	commands = map[string]command{
		"dev":          {"dev [--catalog DIRS] [--port 7233] [--ui-port 8233]", "run the Temporal dev server (UI on :8233) and a worker with the catalog", cmdDev},
		"worker":       {"worker [--config FILE]", "run a worker against a Temporal cluster or Temporal Cloud", cmdWorker},
		"validate":     {"validate FILE|DIR...", "check runbooks; every problem with its path; exit 1 on errors", cmdValidate},
		"plan":         {"plan FILE|NAME", "layers, parallel groups and the critical path against the RTO", cmdPlan},
		"actions":      {"actions", "list the action catalogue with arguments", cmdActions},
		"failover":     {"failover NAME --reason TEXT [--as NAME] [--declared-at RFC3339] [--follow]", "start a real failover", startMode("failover")},
		"drill":        {"drill NAME [--reason TEXT] [--follow]", "start a drill (spec.drill applied: mappings, skips, teardown)" + drillUsage(), cmdDrill},
		"tabletop":     {"tabletop NAME [--reason TEXT] [--follow]", "start a paper drill: every step is acknowledged, nothing runs", startMode("tabletop")},
		"status":       {"status RUN [--follow] [--output json]", "steps, RTO budget and what the run waits for", cmdStatus},
		"approve":      {"approve RUN STEP --as NAME [--comment TEXT] [--signal]", "approve a gated step", operatorCommand(messages[workflows.MsgApprove])},
		"reject":       {"reject RUN STEP --as NAME --reason TEXT [--signal]", "reject a gated step (the step pauses)", operatorCommand(messages[workflows.MsgReject])},
		"ack":          {"ack RUN STEP --as NAME [--comment TEXT] [--signal]", "acknowledge a manual.task or tabletop step", operatorCommand(messages[workflows.MsgAck])},
		"retry":        {"retry RUN STEP [--as NAME] [--signal]", "retry a paused step", operatorCommand(messages[workflows.MsgRetry])},
		"skip":         {"skip RUN STEP --reason TEXT [--as NAME] [--signal]", "skip a step that has not run", operatorCommand(messages[workflows.MsgSkip])},
		"abort":        {"abort RUN --reason TEXT [--as NAME] [--signal]", "abort the run (drill teardown still runs)", operatorCommand(messages[workflows.MsgAbort])},
		"override":     {"override RUN CHECK --reason TEXT --as NAME [--signal]", "let a run go on despite a failed pre-flight check (recorded with the reason)", operatorCommand(messages[workflows.MsgOverride])},
		"precheck":     {"precheck NAME|PLAN [--mode drill|failover] [--as NAME]", "run the pre-flight checks alone: nothing changes; exit 1 if one fails", cmdPrecheck},
		"note":         {"note RUN TEXT... [--as NAME] [--signal]", "add a note to the evidence", operatorCommand(messages[workflows.MsgNote])},
		"sign":         {"sign approve|reject|ack|retry|skip|abort RUN [STEP] --as NAME | sign failover|drill|tabletop RUNBOOK --as NAME", "print a signed message (or start) as the JSON to paste into the Temporal UI", cmdSign},
		"evidence":     {"evidence RUN|HISTORY.json [--format md|json] [--out FILE] [--from auto|sink|history] | evidence list [--runbook NAME] | evidence verify FILE|DIR... [--signers FILE]", "a run's evidence (rebuilt from history when the sink lost it); list past runs", cmdEvidence},
		"readiness":    {"readiness [--json] [--runbook NAME] [--critical-rto 4h] [--no-backup-check]", "seed 004 §29 scorecard rows derived from runbooks, past runs and backups; critical systems below 2 called out", cmdReadiness},
		"invariant":    {"invariant NAME", "the recovery invariant proved by the last successful drill, or what is missing (exit 1)", cmdInvariant},
		"failback":     {"failback RUN --reason TEXT [--as NAME] [--follow]", "undo a finished failover: DNS, pools and scale back as its record says, the rest as manual tasks", cmdFailback},
		"teardown":     {"teardown RUN [--as NAME] [--follow]", "run the teardown of a drill that was terminated or lost its worker, from the runbook text it recorded", cmdTeardown},
		"reenact":      {"reenact RUN [--threshold 1.5] [--min-delta 1s] [--out FILE]", "drill the exact runbook text a past run used, then compare step timings then vs now", cmdReenact},
		"replay":       {"replay HISTORY.json|RUN...", "replay recorded runs against this build's workflow code; exit 1 if one cannot be carried", cmdReplay},
		"codec-key":    {"codec-key ID", "print a new AES-256 key line (ID=BASE64) for payload encryption", cmdCodecKey},
		"codec-server": {"codec-server [--listen 127.0.0.1:8234] [--ui-origin URL] [--token-env NAME]", "decrypt payloads for the Temporal UI with the configured keys", cmdCodecServer},
	}
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		os.Exit(2)
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "lifeboat: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, os.Args[2:]); err != nil {
		var ex exitError
		if errors.As(err, &ex) {
			os.Exit(ex.code)
		}
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "lifeboat %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "lifeboat — disaster-recovery restore runbooks on Temporal\n\nUsage:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  lifeboat %-75s %s\n", commands[n].usage, commands[n].doc)
	}
	fmt.Fprintln(os.Stderr, "\nCommon flags: --config FILE (or LIFEBOAT_CONFIG); LIFEBOAT_ADDRESS, LIFEBOAT_NAMESPACE, … override it (see README).")
}

// exitError exits with a code after the command printed its own message.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// parse parses flags that may come before, between or after positional
// arguments, and checks the number of positionals.
func parse(fs *flag.FlagSet, args []string, minPos, maxPos int, name string) ([]string, error) {
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: lifeboat %s\n", commands[name].usage)
		fs.PrintDefaults()
	}
	return parseArgs(fs, args, minPos, maxPos)
}

// parseArgs parses interleaved flags and positionals (fs.Usage already set).
func parseArgs(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < minPos || (maxPos >= 0 && len(pos) > maxPos) {
		fs.Usage()
		return nil, flag.ErrHelp
	}
	return pos, nil
}

// defaultUser is who --as defaults to: LIFEBOAT_USER, the login name, or
// the operating system's user; never empty, so every action names someone
// (an unsigned name is recorded as unproven).
func defaultUser() string {
	for _, k := range []string{"LIFEBOAT_USER", "USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown-user"
}

func joinArgs(a []string) string { return strings.Join(a, " ") }
