// Package devserver runs the official Temporal dev server the way lifeboat
// needs it (lifeboat's search attributes registered, eager activities on),
// building the temporal CLI into a version-keyed cache on first use. It is
// what `lifeboat dev` starts; the test rig starts it the same way.
package devserver

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"

	"go.temporal.io/sdk/client"
	sdktest "go.temporal.io/sdk/testsuite"

	"github.com/lifeboat-dr/lifeboat/devserver/gobuild"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// EnsureTemporal returns the path of the cached temporal CLI, building it first if needed.
func EnsureTemporal(ctx context.Context, progress io.Writer) (string, error) {
	return gobuild.Temporal(ctx, progress)
}

// Options configure a dev server.
type Options struct {
	// HostPort to listen on; empty picks a free port.
	HostPort string
	// UIPort enables the UI on that port when not empty.
	UIPort string
	// DBFile persists to SQLite when not empty.
	DBFile string
	// Log receives the server's output (default: discarded).
	Log io.Writer
	// Progress receives build progress (default: stderr).
	Progress io.Writer
	// CodecEndpoint is a codec server the UI decodes payloads with.
	CodecEndpoint string
}

// Server is a running Temporal dev server.
type Server struct {
	*sdktest.DevServer
	HostPort string
	UIURL    string
}

// Start starts the official dev server with what lifeboat needs: eager
// activity execution on and lifeboat's search attributes registered.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Progress == nil {
		o.Progress = os.Stderr
	}
	bin, err := EnsureTemporal(ctx, o.Progress)
	if err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	extra := []string{"--dynamic-config-value", "system.enableActivityEagerExecution=true"}
	names := make([]string, 0, len(workflows.SearchAttributeTypes))
	for n := range workflows.SearchAttributeTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		extra = append(extra, "--search-attribute", n+"="+workflows.SearchAttributeTypes[n])
	}
	if o.CodecEndpoint != "" {
		extra = append(extra, "--ui-codec-endpoint", o.CodecEndpoint)
	}
	opts := sdktest.DevServerOptions{
		ExistingPath:  bin,
		ClientOptions: &client.Options{HostPort: o.HostPort, Namespace: "default", Logger: quietLogger{}},
		DBFilename:    o.DBFile,
		EnableUI:      o.UIPort != "",
		UIPort:        o.UIPort,
		LogLevel:      "error",
		ExtraArgs:     extra,
		Stdout:        o.Log,
		Stderr:        o.Log,
	}
	srv, err := sdktest.StartDevServer(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("starting the Temporal dev server (%s): %w", bin, err)
	}
	d := &Server{DevServer: srv, HostPort: srv.FrontendHostPort()}
	if o.UIPort != "" {
		d.UIURL = "http://localhost:" + o.UIPort
	}
	return d, nil
}

// quietLogger drops the SDK client's own log lines.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
