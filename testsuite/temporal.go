package testsuite

import (
	"context"
	"io"

	"github.com/lifeboat-dr/lifeboat/devserver"
	"github.com/lifeboat-dr/lifeboat/devserver/gobuild"
)

// The rig starts Temporal exactly as `lifeboat dev` does (package devserver).
type (
	// DevOptions configure a dev server.
	DevOptions = devserver.Options
	// DevServer is a running Temporal dev server.
	DevServer = devserver.Server
)

// EnsureTemporal returns the path of the cached temporal CLI, building it first if needed.
func EnsureTemporal(ctx context.Context, progress io.Writer) (string, error) {
	return gobuild.Temporal(ctx, progress)
}

// StartTemporal starts the dev server (see devserver.Start).
func StartTemporal(ctx context.Context, o DevOptions) (*DevServer, error) {
	return devserver.Start(ctx, o)
}

// GoInstall builds pkg@version into the version-keyed cache once (see gobuild.GoInstall).
func GoInstall(ctx context.Context, name, pkg, version string, progress io.Writer) (string, error) {
	return gobuild.GoInstall(ctx, name, pkg, version, progress)
}

// CacheDir is where rig binaries are cached (see gobuild.CacheDir).
func CacheDir() (string, error) { return gobuild.CacheDir() }
