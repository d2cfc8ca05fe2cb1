package browser

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
)

// chromiumPaths are where Debian's and other distributions' packages put Chromium.
var chromiumPaths = []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"}

// EnsureChromium returns the path of a headless-capable Chromium for the
// browser tests: $LIFEBOAT_CHROMIUM, else the system's, else it installs
// Debian's `chromium` package with apt-get (as root; ~20 s on a warm mirror).
// A test tool's own browser download does not work on machines without
// internet, the system package does.
func EnsureChromium(ctx context.Context, progress io.Writer) (string, error) {
	installing.Lock() // parallel tests: one apt-get at a time
	defer installing.Unlock()
	if p := os.Getenv("LIFEBOAT_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("LIFEBOAT_CHROMIUM=%s: %w (unset it to use or install the system chromium)", p, err)
		}
		return p, nil
	}
	if p, ok := findChromium(); ok {
		return p, nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", errors.New("chromium is not installed and apt-get is not available: install Chromium and set LIFEBOAT_CHROMIUM to its binary")
	}
	if os.Geteuid() != 0 {
		return "", errors.New("chromium is not installed: run `sudo apt-get install -y chromium` (installing needs root), or set LIFEBOAT_CHROMIUM to a Chromium binary")
	}
	fmt.Fprintln(progress, "installing Debian's chromium for the browser tests (apt-get)…")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "chromium"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get %v: %w\n%s", args, err, out)
		}
	}
	if p, ok := findChromium(); ok {
		return p, nil
	}
	return "", fmt.Errorf("apt-get installed chromium but none of %v exists", chromiumPaths)
}

// installing serialises EnsureChromium within a process.
var installing sync.Mutex

func findChromium() (string, bool) {
	for _, p := range chromiumPaths {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}
