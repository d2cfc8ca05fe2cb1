// Command lifeboat executes disaster-recovery restore runbooks on Temporal.
// This package only parses flags (with spf13/cobra, the command library of the
// Temporal CLI, kubectl, Velero and Argo CD); the work is in runbooks,
// starter, worker and devserver.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// configPath is the persistent --config of every command (before or after
// the command's name), defaulting to LIFEBOAT_CONFIG.
var configPath string

// runner runs a command with its positional arguments once cobra has parsed
// its flags.
type runner func(ctx context.Context, pos []string) error

// command is one subcommand: its usage line, what it does, how many
// arguments it takes, its flags (build registers them on the command's flag
// set and returns what runs) and how its arguments complete.
type command struct {
	use      string
	short    string
	args     cobra.PositionalArgs
	build    func(*pflag.FlagSet) runner
	complete cobra.CompletionFunc
	flagComp map[string]cobra.CompletionFunc
	aliases  []string
	subs     []command
}

// commands is the command tree, in the order `lifeboat --help` lists it.
func commands() []command {
	return []command{
		{use: "dev", short: "run the Temporal dev server (UI on :8233) and a worker with the catalog", args: none, build: cmdDev},
		{use: "worker", short: "run a worker against a Temporal cluster or Temporal Cloud", args: none, build: cmdWorker},
		{use: "validate FILE|DIR...", short: "check runbooks; every problem with its path; exit 1 on errors", args: atLeast(1), build: cmdValidate},
		{use: "plan FILE|NAME", short: "layers, parallel groups and the critical path against the RTO", args: exactly(1), build: cmdPlan, complete: runbookNames},
		{use: "schema", short: "print the JSON Schema of runbooks and recovery plans, for editors (yaml-language-server, VS Code's YAML extension)", args: none, build: cmdSchema},
		{use: "actions", short: "list the action catalogue with arguments", args: none, build: cmdActions},
		{use: "failover NAME --reason TEXT", short: "start a real failover", args: exactly(1), build: startMode(workflows.ModeFailover), complete: runbookNames},
		{use: "drill NAME", short: "start a drill (spec.drill applied: mappings, skips, teardown); or manage drill schedules", args: exactly(1),
			build: startMode(workflows.ModeDrill), complete: runbookNames, subs: drillCommands()},
		{use: "tabletop NAME", short: "start a paper drill: every step is acknowledged (lifeboat ack), nothing runs", args: exactly(1),
			build: startMode(workflows.ModeTabletop), complete: runbookNames},
		{use: "status RUN", short: "steps, RTO budget and what the run waits for", args: exactly(1), build: cmdStatus, complete: runIDs(true)},
		operator(workflows.MsgApprove, "approve RUN STEP --as NAME", "approve a gated step"),
		operator(workflows.MsgReject, "reject RUN STEP --as NAME --reason TEXT", "reject a gated step (the step pauses)"),
		operator(workflows.MsgAck, "ack RUN STEP --as NAME", "acknowledge a manual.task or tabletop step"),
		operator(workflows.MsgRetry, "retry RUN STEP", "retry a paused step"),
		operator(workflows.MsgSkip, "skip RUN STEP --reason TEXT", "skip a step that has not run"),
		operator(workflows.MsgAbort, "abort RUN --reason TEXT", "abort the run (drill teardown still runs)"),
		operator(workflows.MsgOverride, "override RUN CHECK --reason TEXT --as NAME", "let a run go on despite a failed pre-flight check (recorded with the reason)"),
		operator(workflows.MsgNote, "note RUN TEXT...", "add a note to the evidence"),
		{use: "precheck NAME|PLAN", short: "run the pre-flight checks alone: nothing changes; exit 1 if one fails", args: exactly(1), build: cmdPrecheck, complete: runbookNames},
		{use: "sign", short: "print a signed message (or start) as the JSON to paste into the Temporal UI", args: none, subs: signCommands()},
		{use: "evidence RUN|HISTORY.json", short: "a run's evidence (rebuilt from history when the sink lost it); list and verify past runs", args: exactly(1),
			build: cmdEvidence, complete: runIDs(false), subs: []command{
				{use: "list", short: "finished runs, newest first, with outcome, RTO and RPO", args: none, build: cmdEvidenceList},
				{use: "verify [FILE|DIR|s3://BUCKET/PREFIX...]", short: "check stored evidence as an auditor would (default: the config's evidence location), cross-checked with Temporal's finished runs; exit 1 naming what fails", args: atLeast(0), build: cmdEvidenceVerify},
			}},
		{use: "readiness", short: "the DR readiness scorecard (0–4 per dimension) derived from runbooks, past runs and backups; critical systems below 2 called out", args: none, build: cmdReadiness},
		{use: "invariant NAME", short: "the recovery invariant proved by the last successful drill, or what is missing (exit 1)", args: exactly(1), build: cmdInvariant, complete: runbookNames},
		{use: "failback RUN --reason TEXT", short: "undo a finished failover: DNS, pools and scale back as its record says, the rest as manual tasks", args: exactly(1), build: cmdFailback, complete: runIDs(false)},
		{use: "teardown RUN", short: "run the teardown of a drill that was terminated or lost its worker, from the runbook text it recorded", args: exactly(1), build: cmdTeardown, complete: runIDs(false)},
		{use: "reenact RUN", short: "drill the exact runbook text a past run used, then compare step timings then vs now", args: exactly(1), build: cmdReenact, complete: runIDs(false)},
		{use: "replay HISTORY.json|RUN...", short: "replay recorded runs against this build's workflow code; exit 1 if one cannot be carried", args: atLeast(1), build: cmdReplay},
		{use: "codec-key ID", short: "print a new AES-256 key line (ID=BASE64) for payload encryption", args: exactly(1), build: cmdCodecKey},
		{use: "codec-server", short: "decrypt payloads for the Temporal UI with the configured keys", args: none, build: cmdCodecServer},
		{use: "rbac DIR...", short: "print the Roles and ClusterRoles the catalog's steps need, per cluster and namespace (drills included), bound to the worker", args: atLeast(1), build: cmdRBAC},
		{use: "setup", short: "register lifeboat's search attributes in the config's namespace (once, on a self-hosted cluster)", args: none, build: cmdSetup},
		{use: "version", short: "this build's version, commit and Temporal SDK", args: none, build: cmdVersion},
	}
}

// drillCommands are the schedule commands under `lifeboat drill`; any other
// first argument is a runbook name to drill now.
func drillCommands() []command {
	return []command{
		{use: `schedule NAME --cron "0 3 1 * *"`, short: "schedule a recurring drill", args: exactly(1), build: cmdDrillSchedule, complete: runbookNames},
		{use: "schedules", short: "list drill schedules with next run and last result", args: none, build: cmdDrillSchedules, aliases: []string{"list"}},
		{use: "pause SCHEDULE", short: "pause a schedule", args: exactly(1), build: scheduleOp("pause")},
		{use: "unpause SCHEDULE", short: "resume a schedule", args: exactly(1), build: scheduleOp("unpause")},
		{use: "trigger SCHEDULE", short: "start the scheduled drill now", args: exactly(1), build: scheduleOp("trigger")},
		{use: "delete SCHEDULE", short: "delete a schedule (its past runs and evidence stay)", args: exactly(1), build: scheduleOp("delete")},
	}
}

// signCommands are `lifeboat sign VERB …`: the operator messages (but notes)
// and the three starts.
func signCommands() []command {
	var subs []command
	for _, verb := range []string{workflows.MsgApprove, workflows.MsgReject, workflows.MsgAck, workflows.MsgRetry, workflows.MsgSkip, workflows.MsgAbort, workflows.MsgOverride} {
		op := operator(verb, "", "")
		subs = append(subs, command{use: verb + " " + strings.SplitN(op.use, " ", 2)[1], short: "print a signed " + verb + " for the Temporal UI's Send a Signal",
			args: op.args, build: cmdSign(verb), complete: op.complete, flagComp: op.flagComp})
	}
	for _, mode := range []string{workflows.ModeFailover, workflows.ModeDrill, workflows.ModeTabletop} {
		subs = append(subs, command{use: mode + " RUNBOOK --as NAME", short: "print a signed " + mode + " start for the Temporal UI's Start Workflow input",
			args: exactly(1), build: cmdSign(mode), complete: runbookNames})
	}
	return subs
}

// operator is the command that sends one operator message.
func operator(name, use, short string) command {
	m := messages[name]
	c := command{use: use, short: short, args: usage(cobra.RangeArgs(m.minPos, m.maxPos)), build: operatorCommand(m), complete: waitingSteps(name),
		flagComp: map[string]cobra.CompletionFunc{"as": approverNames}}
	if m.maxPos < 0 {
		c.args = atLeast(m.minPos)
	}
	if use == "" {
		c.use = name + " RUN"
		if m.minPos == 2 {
			c.use += " STEP"
		}
	}
	return c
}

// newCobra builds the cobra command of c (and of its subcommands).
func newCobra(c command) *cobra.Command {
	cc := &cobra.Command{Use: c.use, Short: c.short, Args: c.args, Aliases: c.aliases, ValidArgsFunction: c.complete}
	if c.build != nil {
		run := c.build(cc.Flags())
		cc.RunE = func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), args) }
	}
	for name, f := range c.flagComp {
		if cc.Flags().Lookup(name) != nil {
			_ = cc.RegisterFlagCompletionFunc(name, f)
		}
	}
	if c.complete == nil {
		cc.ValidArgsFunction = cobra.NoFileCompletions
	}
	for _, s := range c.subs {
		cc.AddCommand(newCobra(s))
	}
	return cc
}

// rootCommand is `lifeboat` with every subcommand, plus cobra's `help` and
// `completion bash|zsh|fish|powershell`.
func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "lifeboat",
		Short: "lifeboat — disaster-recovery restore runbooks on Temporal",
		Long: "lifeboat — disaster-recovery restore runbooks on Temporal.\n\n" +
			"Common flags: --config FILE (or LIFEBOAT_CONFIG); LIFEBOAT_ADDRESS, LIFEBOAT_NAMESPACE, … override it (see docs/running-for-real.md, Configuration).\n" +
			"Shell completion (runbook names, open runs, waiting steps, approvers): source <(lifeboat completion bash)",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().StringVar(&configPath, "config", os.Getenv("LIFEBOAT_CONFIG"), "config file (default $LIFEBOAT_CONFIG; none: the dev server's defaults)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	// lifeboat --version, as kubectl and the temporal CLI answer it.
	root.Version = strings.TrimPrefix(versionLine(), "lifeboat ")
	root.SetVersionTemplate("lifeboat {{.Version}}\n")
	for _, c := range commands() {
		root.AddCommand(newCobra(c))
	}
	root.InitDefaultVersionFlag()
	root.InitDefaultHelpCmd()
	addExamples(root)
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, err := rootCommand().ExecuteContextC(ctx)
	if err == nil {
		return
	}
	var ex exitError
	if errors.As(err, &ex) {
		os.Exit(ex.code)
	}
	name := strings.TrimPrefix(cmd.CommandPath(), "lifeboat ")
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintf(os.Stderr, "lifeboat %s: %v\nUsage: %s\nSee: %s --help\n", name, err, cmd.UseLine(), cmd.CommandPath())
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "lifeboat %s: %v\n", name, err)
	os.Exit(1)
}

// exitError exits with a code after the command printed its own message.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// usageError is a command line lifeboat cannot parse (exit 2, with usage).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// none, exactly and atLeast check the number of positional arguments; their
// errors are usage errors.
var none = exactly(0)

func exactly(n int) cobra.PositionalArgs { return usage(cobra.ExactArgs(n)) }

func atLeast(n int) cobra.PositionalArgs { return usage(cobra.MinimumNArgs(n)) }

// usage makes a wrong count of arguments a usage error (exit 2) that says
// what the command takes and what it got, in its usage line's words
// ("expects RUN STEP; got 1: run-1"), not cobra's "accepts between 2 and 2
// arg(s)".
func usage(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if check(cmd, args) == nil {
			return nil
		}
		var takes []string
		for _, f := range strings.Fields(cmd.Use)[1:] {
			if strings.HasPrefix(f, "-") {
				break
			}
			takes = append(takes, f)
		}
		want, got := "no arguments", "none"
		if len(takes) > 0 {
			want = strings.Join(takes, " ")
		}
		if len(args) > 0 {
			got = fmt.Sprintf("%d: %s", len(args), strings.Join(args, " "))
		}
		return usageError{fmt.Errorf("expects %s; got %s", want, got)}
	}
}

// defaultUser is who --as defaults to: LIFEBOAT_USER, the login name, or
// the operating system's user; never empty, so every action names someone
// (an unsigned name is recorded as unproven).
func defaultUser() string {
	name, _ := defaultUserSource()
	return name
}

// defaultUserSource is defaultUser and where it came from ("$USER").
func defaultUserSource() (name, from string) {
	for _, k := range []string{"LIFEBOAT_USER", "USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v, "$" + k
		}
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username, "the operating system's user"
	}
	return "unknown-user", "no $LIFEBOAT_USER, $USER or $LOGNAME"
}

// withAsSource adds to a refusal, when --as was not given, where the name
// it refused came from: "refused: root is not in the approver groups" then
// says that root was $USER and how to name someone else.
func withAsSource(err error, fs *pflag.FlagSet) error {
	var refused *starter.RefusedError
	if err == nil || fs.Changed("as") || !errors.As(err, &refused) {
		return err
	}
	name, from := defaultUserSource()
	return fmt.Errorf("%w (--as was not given, so the name was %s from %s: pass --as NAME)", err, name, from)
}

func joinArgs(a []string) string { return strings.Join(a, " ") }
