//go:build integration

package testsuite_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/lifeboat-dr/lifeboat/testsuite"
)

// TestMain builds the whole rig first, both build lanes at once (a cold
// machine's first run, beside the unit tests: ~50 min; later runs find
// everything cached, and a part another process is building is waited
// for). A rig that cannot be built fails the run: nothing is skipped.
func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 70*time.Minute)
	err := testsuite.EnsureRig(ctx, os.Stderr)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the rig failed (CI=%v): %v\n", testsuite.InCI(), err)
		os.Exit(1)
	}
	if binDir, err = os.MkdirTemp("", "lifeboat-it-bin"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(binDir)
	os.Exit(code)
}

// binDir holds what the tests build once (see buildLifeboat).
var binDir string
