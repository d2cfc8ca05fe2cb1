//go:build integration

package testsuite_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTheREADMEFiveMinutePathWorksAsWritten runs the README's "Five minutes
// with lifeboat" block line by line, as a newcomer would type it, in a fresh
// directory holding the example runbooks and bin/lifeboat. Only two things
// differ: `lifeboat dev` listens on spare ports (LIFEBOAT_ADDRESS points the
// CLI there), and XXXXXX is the run id the tabletop printed.
func TestTheREADMEFiveMinutePathWorksAsWritten(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	block := docBlock(t, "../README.md", "## Five minutes with lifeboat")
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	out, err := exec.Command("cp", "-r", "../runbooks", filepath.Join(dir, "runbooks")).CombinedOutput()
	require.NoError(t, err, string(out))
	out, err = exec.Command("cp", buildLifeboat(t), filepath.Join(dir, "bin", "lifeboat")).CombinedOutput()
	require.NoError(t, err, string(out)) // a copy: the other tests share the built binary
	port, uiPort := freePort(t), freePort(t)
	env := []string{"LIFEBOAT_ADDRESS=localhost:" + port, "LIFEBOAT_USER=", "LIFEBOAT_CONFIG="}

	var run, last string
	for _, line := range block {
		cmd, _, _ := strings.Cut(line, "  #")
		cmd = strings.TrimSpace(cmd)
		switch {
		case cmd == "" || strings.HasPrefix(cmd, "#") || cmd == "make build":
			continue // make build: bin/lifeboat is built already
		case strings.HasSuffix(cmd, " dev &"):
			runDev(t, dir, nil, env, "bash", "-c", "exec "+strings.TrimSuffix(cmd, " &")+" --port "+port+" --ui-port "+uiPort)
			continue
		}
		if run != "" {
			cmd = strings.ReplaceAll(cmd, "lifeboat-warm-standby-failover-tabletop-XXXXXX", run)
		}
		c := exec.Command("bash", "-c", cmd)
		c.Dir, c.Env = dir, append(os.Environ(), env...)
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
	assert.Contains(t, last, "approved by bob (signed", "the five-minute path signs by default")
	assert.NotContains(t, last, "unproven")

	// Then the walkthrough, beside the same lifeboat dev: write the file,
	// check it, drill it. Its service check points at this dev's UI port.
	sh := func(script string) string {
		c := exec.Command("bash", "-c", script)
		c.Dir, c.Env = dir, append(os.Environ(), env...)
		b, err := c.CombinedOutput()
		t.Logf("$ %s\n%s", script, b)
		require.NoError(t, err, "docs/first-runbook.md fails as written: %s\n%s", script, b)
		return string(b)
	}
	const walkthrough = "../docs/first-runbook.md"
	file := strings.Join(docBlock(t, walkthrough, "## 1. The file"), "\n")
	sh(strings.ReplaceAll(file, "localhost:8233", "localhost:"+uiPort))
	for _, line := range docBlock(t, walkthrough, "## 2. Check it and see its plan") {
		sh(line)
	}
	var drill string
	for _, line := range docBlock(t, walkthrough, "## 3. Drill it") {
		if drill != "" {
			line = strings.ReplaceAll(line, "lifeboat-status-page-drill-XXXXXX", drill)
		}
		last = sh(strings.TrimSpace(line))
		if m := regexp.MustCompile(`workflow: (lifeboat-status-page-drill-\S+)`).FindStringSubmatch(last); m != nil {
			drill = m[1]
		}
	}
	require.NotEmpty(t, drill, "the drill printed its run id")
	assert.Contains(t, last, "| Mode | drill |")
	assert.Contains(t, last, "| Outcome | **succeeded** |", "the first runbook drills successfully")
	assert.Contains(t, last, "acknowledged by bob (signed")
	assert.Contains(t, last, "approved by bob (signed")
}

// docBlock is the first ```sh block after the heading in a file of the
// repository, line by line.
func docBlock(t *testing.T, file, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(b), heading+"\n")
	require.True(t, ok, "%s has no %q", file, heading)
	_, after, ok = strings.Cut(after, "```sh\n")
	require.True(t, ok)
	body, _, ok := strings.Cut(after, "```")
	require.True(t, ok)
	return strings.Split(strings.TrimSpace(body), "\n")
}
