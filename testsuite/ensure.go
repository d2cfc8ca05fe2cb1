package testsuite

import (
	"context"
	"fmt"
	"io"
	"time"
)

// EnsureRig builds every rig binary that is not cached yet, in two lanes at
// once — the Kubernetes control plane, Velero and Argo CD (one module, the
// longest build); the temporal CLI, the Temporal server, terraform and the
// S3 server — so a cold machine waits for the longer lane rather than for
// the sum (each go build already uses every core; the lanes overlap
// downloads, linking and the other's idle moments). Warm, it returns at once.
func EnsureRig(ctx context.Context, progress io.Writer) error {
	start := time.Now()
	lanes := [][]func() error{
		{
			func() error { _, err := ensureK8sRig(ctx, progress); return err },
		},
		{
			func() error { _, err := EnsureTemporal(ctx, progress); return err },
			// After the CLI: the server shares its packages (the build cache).
			func() error { _, err := EnsureTemporalServer(ctx, progress); return err },
			func() error { _, err := EnsureTerraform(ctx, progress); return err },
			func() error { _, err := ensureVersityGW(ctx, progress); return err },
		},
	}
	errs := make(chan error, len(lanes))
	for _, lane := range lanes {
		go func() {
			for _, build := range lane {
				if err := build(); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range lanes {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first == nil && time.Since(start) > time.Minute {
		fmt.Fprintf(progress, "the rig is built (%s); later runs start in seconds\n", time.Since(start).Round(time.Second))
	}
	return first
}
