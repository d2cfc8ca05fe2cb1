// Package gobuild builds tools from the Go module proxy into a cache keyed by
// version (the temporal CLI for the dev server; the rig's parts). It imports
// nothing but the standard library, so a program that only needs to start
// those builds compiles in seconds.
package gobuild

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// TemporalVersion is the temporal CLI built for the dev server (newer versions
// carry replace directives and do not `go install`).
const TemporalVersion = "v1.5.1"

// Temporal returns the path of the cached temporal CLI, building it first if needed.
func Temporal(ctx context.Context, progress io.Writer) (string, error) {
	return GoInstall(ctx, "temporal", "github.com/temporalio/cli/cmd/temporal", TemporalVersion, progress)
}

// CacheDir is where rig binaries are cached: $XDG_CACHE_HOME/lifeboat
// (default ~/.cache/lifeboat).
func CacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory (set XDG_CACHE_HOME): %w", err)
	}
	return filepath.Join(base, "lifeboat"), nil
}

// GoInstall builds pkg@version into the cache (dir name+"-"+version) once and
// returns the binary's path. While it builds it prints a progress line to
// progress every 15 seconds.
func GoInstall(ctx context.Context, name, pkg, version string, progress io.Writer) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, name+"-"+version)
	bin := filepath.Join(dir, name)
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Two programs asking at once (make demo's two phases, parallel tests)
	// build once: the second waits for the first's lock, then finds the binary.
	unlock, err := Lock(filepath.Join(dir, ".lock"), name, progress)
	if err != nil {
		return "", err
	}
	defer unlock()
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() {
		return bin, nil
	}
	if progress == nil {
		progress = io.Discard
	}
	fmt.Fprintf(progress, "building %s %s from the Go module proxy into %s (first run only; a few minutes on 2 cores)…\n", name, version, dir)
	// Build into a temporary GOBIN so an interrupted build never leaves a half binary.
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	// -s -w: no symbol tables or DWARF, a shorter link for a tool nobody debugs.
	cmd := exec.CommandContext(ctx, "go", "install", "-trimpath", "-ldflags=-s -w", pkg+"@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-mod=mod")
	out, err := RunWithProgress(cmd, name, progress)
	if err != nil {
		return "", fmt.Errorf("building %s %s failed: %w\n%s", name, version, err, Tail(out, 2000))
	}
	if err := os.Rename(filepath.Join(tmp, filepath.Base(pkg)), bin); err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "built %s %s\n", name, version)
	return bin, nil
}

// Lock takes an exclusive lock on path (flock), waiting for another holder
// (another build of name, in this process or another) with a progress
// line every 15 seconds.
func Lock(path, name string, progress io.Writer) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	next := 15 * time.Second
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if waited := time.Since(start); waited >= next {
			fmt.Fprintf(progress, "  still building %s (another program started it)… %s\n", name, waited.Round(time.Second))
			next += 15 * time.Second
		}
		time.Sleep(200 * time.Millisecond)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// RunWithProgress runs cmd, printing a progress line for name every 15
// seconds, and returns its combined output.
func RunWithProgress(cmd *exec.Cmd, name string, progress io.Writer) ([]byte, error) {
	done := make(chan struct{})
	started := time.Now()
	go func() {
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(progress, "  still building %s… %s\n", name, time.Since(started).Round(time.Second))
			}
		}
	}()
	out, err := cmd.CombinedOutput()
	close(done)
	if err == nil {
		logBuild(name, time.Since(started), cmd.ProcessState)
	}
	return out, err
}

// logBuild appends one line per finished build to builds.log in the cache
// directory: wall time and the CPU the build and every compiler and linker
// it ran spent (wait4's rusage counts reaped children). It is how a cold
// run's time is split between the rig's parts.
func logBuild(name string, wall time.Duration, st *os.ProcessState) {
	cache, err := CacheDir()
	if err != nil || st == nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(cache, "builds.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s\t%s\twall %s\tcpu %s\n", time.Now().UTC().Format(time.RFC3339), name,
		wall.Round(time.Second), (st.UserTime() + st.SystemTime()).Round(time.Second))
}

// Tail is the last n bytes of b, for error messages.
func Tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// VCSFlags are the go build flags that stamp the commit of the checkout at
// dir into a binary (lifeboat version): -buildvcs=auto, which overrides a
// GOFLAGS of -buildvcs=false, when git can read the checkout; none when it
// cannot (no git, not a checkout, a repository git refuses as another
// user's), where asking for the stamp would fail the build.
func VCSFlags(dir string) []string {
	cmd := exec.Command("git", "rev-parse", "HEAD")
	cmd.Dir = dir
	if cmd.Run() != nil {
		return nil
	}
	return []string{"-buildvcs=auto"}
}
