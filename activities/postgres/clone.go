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

// cloneStandby makes (or, on a retry, finds) the drill's clone of the
// standby: pg_basebackup of the standby into the clone instance's data
// directory, marked with the drill's run, started as a standby with no
// upstream until Promote promotes it.
func (a *Actions) cloneStandby(ctx context.Context, in runbooks.StepInput, c Conn) error {
	inst, err := a.Local.drillClone(c.Clone, in, "postgres.promote")
	if err != nil {
		return err
	}
	drill := in.DrillRun
	if drill == "" {
		drill = in.WorkflowID
	}
	switch owner, err := cloneOwner(inst); {
	case err == nil && owner == drill:
		if a.Local.running(ctx, inst) {
			return nil
		}
		return a.Local.start(ctx, inst)
	case err == nil:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"postgres.promote: clone instance %s (%s) holds the clone of drill %s, which was not torn down: run `lifeboat teardown %s`, then retry; nothing was changed", c.Clone, inst.DataDir, owner, owner), "CloneInUse", nil)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if entries, err := os.ReadDir(inst.DataDir); err == nil && len(entries) > 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"postgres.promote: clone instance %s's data directory %s is not empty and is not a lifeboat clone: lifeboat clones only into an empty or missing directory; nothing was changed", c.Clone, inst.DataDir), "CloneInUse", nil)
	}
	dsn, err := a.dsn(c, "postgres.promote")
	if err != nil {
		return err
	}
	src, err := sourceOf(dsn)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("postgres.promote: "+err.Error(), "InvalidArgument", nil)
	}
	parent := filepath.Dir(inst.DataDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	if err := a.Local.chownForTool(parent); err != nil {
		return err
	}
	// No -R: the clone gets no connection to production. It starts as a
	// standby with no primary (standby.signal alone), replays the WAL the
	// backup carries, and waits for Promote.
	args := append([]string{"-D", inst.DataDir, "-X", "stream", "-c", "fast", "--no-password"}, src.args...)
	if out, err := a.Local.tool(ctx, src.password, "pg_basebackup", args...); err != nil {
		_ = os.RemoveAll(inst.DataDir)
		return fmt.Errorf("postgres.promote: pg_basebackup of the standby into the drill's clone %s failed (%v): %s", c.Clone, err, a.Secrets.Redact(out))
	}
	for _, f := range []string{cloneMarker, "standby.signal"} {
		if err := os.WriteFile(filepath.Join(inst.DataDir, f), []byte(drill+"\n"), 0o644); err != nil {
			return err
		}
	}
	// The standby's own settings came along: its primary_conninfo would
	// have the clone stream from production's primary.
	if err := cutUpstream(filepath.Join(inst.DataDir, "postgresql.auto.conf")); err != nil {
		return err
	}
	return a.Local.start(ctx, inst)
}

// cloneOwner is the drill whose clone the instance holds.
func cloneOwner(inst Instance) (string, error) {
	b, err := os.ReadFile(filepath.Join(inst.DataDir, cloneMarker))
	return strings.TrimSpace(string(b)), err
}

// RemoveCloneArgs are postgres.removeClone's arguments.
type RemoveCloneArgs struct {
	Clone string `json:"clone"`
}

// RemoveClone stops a drill's clone and deletes its data directory: only a
// directory lifeboat cloned (it carries the drill marker), only of a drill
// clone instance, only in a drill or its teardown.
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
	if errors.Is(err, fs.ErrNotExist) {
		if entries, rerr := os.ReadDir(inst.DataDir); rerr == nil && len(entries) > 0 {
			return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"postgres.removeClone refused: %s is not a clone lifeboat made (no %s marker): lifeboat deletes only its own clones; nothing was changed", inst.DataDir, cloneMarker), "DrillScope", nil)
		}
		return runbooks.StepResult{Summary: "no clone in " + inst.DataDir + ": nothing to remove"}, nil
	}
	if err != nil {
		return runbooks.StepResult{}, err
	}
	if err := a.Local.stop(ctx, inst, "immediate"); err != nil {
		return runbooks.StepResult{}, err
	}
	if err := os.RemoveAll(inst.DataDir); err != nil {
		return runbooks.StepResult{}, err
	}
	return runbooks.StepResult{Summary: fmt.Sprintf("removed the clone %s of drill %s (%s)", args.Clone, owner, inst.DataDir)}, nil
}

// cutUpstream removes the replication settings (primary_conninfo,
// primary_slot_name) from a copied postgresql.auto.conf.
func cutUpstream(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep []string
	for _, line := range strings.Split(string(b), "\n") {
		if k := strings.TrimSpace(line); strings.HasPrefix(k, "primary_conninfo") || strings.HasPrefix(k, "primary_slot_name") {
			continue
		}
		keep = append(keep, line)
	}
	return os.WriteFile(path, []byte(strings.Join(keep, "\n")), 0o600)
}
