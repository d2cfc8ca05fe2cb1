package testsuite

import (
	"context"
	"os"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI=true, where a missing rig part
// is a failure, never a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Temporal starts a dev server for a test package (build it first if needed).
// Failing to start it fails the test, in CI and out of it: the rig is the
// project's own to install, so there is nothing to skip.
func Temporal(tb testing.TB) *DevServer {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	srv, err := StartTemporal(ctx, DevOptions{Progress: os.Stderr})
	if err != nil {
		tb.Fatalf("the Temporal dev server did not start (CI=%v): %v", InCI(), err)
	}
	tb.Cleanup(func() { _ = srv.Stop() })
	return srv
}
