package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// A drill's clone is owned through a claim file beside its data directory
// (DATADIR.lifeboat-drill, created exclusively, naming the drill) taken
// before anything is copied: a second drill cannot clone into it, a
// teardown removes only its own drill's clone, and a clone left half-made
// by a crash is its owner's to redo. No other data directory is ever
// deleted.

// cloneOptions cut a clone from everything of production's: no upstream to
// stream from, no WAL archive to write into, no logical subscriptions
// reaching out; it listens on loopback only.
var cloneOptions = []string{"-c listen_addresses=127.0.0.1", "-c archive_mode=off", "-c primary_conninfo=''",
	"-c primary_slot_name=''", "-c max_logical_replication_workers=0"}

func claimFile(inst Instance) string { return filepath.Clean(inst.DataDir) + ".lifeboat-drill" }

// drillOf is the drill a step belongs to.
func drillOf(in runbooks.StepInput) string {
	if in.DrillRun != "" {
		return in.DrillRun
	}
	return in.WorkflowID
}

// cloneOwner is the drill that claimed the clone instance.
func cloneOwner(inst Instance) (string, error) {
	b, err := os.ReadFile(claimFile(inst))
	return strings.TrimSpace(string(b)), err
}

// claim makes the drill the clone instance's owner, or says whose it is.
func claim(inst Instance, drill string) (owner string, err error) {
	f, err := os.OpenFile(claimFile(inst), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return cloneOwner(inst)
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = f.WriteString(drill + "\n")
	return drill, err
}

// cloneStandby makes (or, on a retry, finds) the drill's clone of the
// standby: pg_basebackup of the standby into the clone instance's data
// directory, started as a standby with no upstream until Promote promotes it.
func (a *Actions) cloneStandby(ctx context.Context, in runbooks.StepInput, c Conn) error {
	inst, err := a.Local.drillClone(c.Clone, in, "postgres.promote")
	if err != nil {
		return err
	}
	drill := drillOf(in)
	if err := a.Local.mkdirForTool(filepath.Dir(inst.DataDir)); err != nil {
		return err
	}
	owner, err := claim(inst, drill)
	if err != nil {
		return err
	}
	if owner != drill {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"postgres.promote: clone instance %s (%s) holds the clone of drill %s, which was not torn down: run `lifeboat teardown %s`, then retry; nothing was changed", c.Clone, inst.DataDir, owner, owner), "CloneInUse", nil)
	}
	if _, err := os.Lstat(filepath.Join(inst.DataDir, "PG_VERSION")); err == nil {
		if a.Local.running(ctx, inst) {
			return nil // a retry: the clone is there and running
		}
		if err := a.Local.start(ctx, inst, cloneOptions...); err == nil {
			return nil
		}
	}
	// Ours, and not a usable clone (none yet, or half-made by a crash): make it.
	if err := os.RemoveAll(inst.DataDir); err != nil {
		return err
	}
	dsn, err := a.dsn(c, "postgres.promote")
	if err != nil {
		return err
	}
	src, err := sourceOf(dsn)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("postgres.promote: "+err.Error(), "InvalidArgument", nil)
	}
	// No -R: the clone gets no connection to production. It starts as a
	// standby with no primary (standby.signal alone), replays the WAL the
	// backup carries, and waits for Promote.
	if out, err := a.Local.tool(ctx, src.password, "pg_basebackup", "-D", inst.DataDir, "-d", src.conninfo, "-X", "stream", "-c", "fast", "--no-password"); err != nil {
		_ = os.RemoveAll(inst.DataDir)
		return fmt.Errorf("postgres.promote: pg_basebackup of the standby into the drill's clone %s failed (%v): %s", c.Clone, err, a.Secrets.Redact(out))
	}
	if err := createNew(filepath.Join(inst.DataDir, "standby.signal")); err != nil {
		return err
	}
	return a.Local.start(ctx, inst, cloneOptions...)
}

// createNew creates an empty file in place of whatever is there (a copy
// of the standby's own, or a symbolic link planted there, which is removed,
// never followed).
func createNew(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// RemoveCloneArgs are postgres.removeClone's arguments.
type RemoveCloneArgs struct {
	Clone string `json:"clone"`
}

// RemoveClone stops a drill's clone and deletes its data directory: only
// the clone this drill claimed, only of a drill clone instance, only in a
// drill or its teardown.
func (a *Actions) RemoveClone(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args RemoveCloneArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	inst, err := a.Local.drillClone(args.Clone, in, "postgres.removeClone")
	if err != nil {
		return runbooks.StepResult{}, err
	}
	owner, err := cloneOwner(inst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return runbooks.StepResult{Summary: "this drill made no clone in " + inst.DataDir + ": nothing to remove"}, nil
	case err != nil:
		return runbooks.StepResult{}, err
	case owner != drillOf(in):
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"postgres.removeClone refused: the clone in %s is drill %s's, not this drill's (%s); nothing was changed — `lifeboat teardown %s` removes it", inst.DataDir, owner, drillOf(in), owner), "DrillScope", nil)
	}
	if err := a.Local.stop(ctx, inst, "immediate"); err != nil {
		return runbooks.StepResult{}, err
	}
	if err := os.RemoveAll(inst.DataDir); err != nil {
		return runbooks.StepResult{}, err
	}
	if err := os.Remove(claimFile(inst)); err != nil {
		return runbooks.StepResult{}, err
	}
	return runbooks.StepResult{Summary: fmt.Sprintf("removed the clone %s of drill %s (%s)", args.Clone, owner, inst.DataDir)}, nil
}
