package testsuite

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/lifeboat-dr/lifeboat/devserver/gobuild"
)

// YAMLLanguageServerVersion is the language server of VS Code's YAML
// extension (and of other editors' YAML support) the editor test runs; it
// runs on Debian's Node 20.
const YAMLLanguageServerVersion = "1.25.0"

// EnsureYAMLLanguageServer installs yaml-language-server from npm into the
// rig cache once (by version) and returns the command that starts it
// speaking the Language Server Protocol over stdio.
func EnsureYAMLLanguageServer(ctx context.Context, progress io.Writer) ([]string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("the editor test needs Node.js (Debian: apt-get install nodejs npm): %w", err)
	}
	cache, err := gobuild.CacheDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cache, "yaml-language-server-"+YAMLLanguageServerVersion)
	main := filepath.Join(dir, "node_modules", "yaml-language-server", "bin", "yaml-language-server")
	cmd := []string{node, main, "--stdio"}
	if _, err := os.Stat(main); err == nil {
		return cmd, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := gobuild.Lock(filepath.Join(dir, ".lock"), "yaml-language-server", progress)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(main); err == nil {
		return cmd, nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return nil, fmt.Errorf("the editor test installs yaml-language-server with npm, which is not installed: %w", err)
	}
	fmt.Fprintf(progress, "installing yaml-language-server %s from npm into %s (first run only)…\n", YAMLLanguageServerVersion, dir)
	install := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--omit=dev", "--prefix", dir, "yaml-language-server@"+YAMLLanguageServerVersion)
	if out, err := install.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("npm install yaml-language-server@%s: %w\n%s", YAMLLanguageServerVersion, err, out)
	}
	if _, err := os.Stat(main); err != nil {
		return nil, fmt.Errorf("npm installed yaml-language-server but %s is missing: %w", main, err)
	}
	return cmd, nil
}
