//go:build integration

package testsuite_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTheREADMEFiveMinutePathWorksAsWritten runs the README's "Five minutes
// with lifeboat" block line by line, as a newcomer would type it, in a fresh
// directory holding the example runbooks and bin/lifeboat. Only two things
// differ: `lifeboat dev` listens on spare ports (LIFEBOAT_ADDRESS points the
// CLI there), and XXXXXX is the run id the tabletop printed.
func TestTheREADMEFiveMinutePathWorksAsWritten(t *testing.T) {
	block := readmeBlock(t, "## Five minutes with lifeboat")
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	out, err := exec.Command("cp", "-r", "../runbooks", filepath.Join(dir, "runbooks")).CombinedOutput()
	require.NoError(t, err, string(out))
	require.NoError(t, os.Rename(buildLifeboat(t), filepath.Join(dir, "bin", "lifeboat")))
	port, uiPort := freePort(t), freePort(t)
	env := append(os.Environ(), "LIFEBOAT_ADDRESS=localhost:"+port, "LIFEBOAT_USER=", "LIFEBOAT_CONFIG=")

	var run, last string
	for _, line := range block {
		cmd, _, _ := strings.Cut(line, "  #")
		cmd = strings.TrimSpace(cmd)
		switch {
		case cmd == "" || strings.HasPrefix(cmd, "#") || cmd == "make build":
			continue // make build: bin/lifeboat is built already
		case strings.HasSuffix(cmd, " dev &"):
			startDevIn(t, dir, env, strings.TrimSuffix(cmd, " &")+" --port "+port+" --ui-port "+uiPort)
			continue
		}
		if run != "" {
			cmd = strings.ReplaceAll(cmd, "lifeboat-warm-standby-failover-tabletop-XXXXXX", run)
		}
		c := exec.Command("bash", "-c", cmd)
		c.Dir, c.Env = dir, env
		b, err := c.CombinedOutput()
		t.Logf("$ %s\n%s", cmd, b)
		require.NoError(t, err, "the README's line fails as written: %s\n%s", cmd, b)
		last = string(b)
		if m := regexp.MustCompile(`workflow: (lifeboat-warm-standby-failover-tabletop-\S+)`).FindStringSubmatch(last); m != nil {
			run = m[1]
		}
	}
	require.NotEmpty(t, run, "the tabletop printed its run id")
	assert.Contains(t, last, "| Outcome | **succeeded** |", "the last line prints the finished tabletop's evidence")
	assert.Contains(t, last, "decide-failover")
}

// readmeBlock is the first ```sh block after the heading, line by line.
func readmeBlock(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(b), heading+"\n")
	require.True(t, ok, "README has no %q", heading)
	_, after, ok = strings.Cut(after, "```sh\n")
	require.True(t, ok)
	body, _, ok := strings.Cut(after, "```")
	require.True(t, ok)
	return strings.Split(strings.TrimSpace(body), "\n")
}

// startDevIn runs a `lifeboat dev` command line in dir until the test ends,
// returning once its worker is up.
func startDevIn(t *testing.T, dir string, env []string, cmdline string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "bash", "-c", "exec "+cmdline)
	cmd.Dir, cmd.Env = dir, env
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			t.Log(sc.Text())
			if strings.HasPrefix(sc.Text(), "worker on ") {
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case <-ready:
	case <-time.After(3 * time.Minute):
		t.Fatal("lifeboat dev did not start its worker")
	}
}
