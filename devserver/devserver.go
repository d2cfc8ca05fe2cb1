// Package devserver runs the official Temporal dev server the way lifeboat
// needs it (lifeboat's search attributes registered, eager activities on),
// building the temporal CLI into a version-keyed cache on first use. It is
// what `lifeboat dev` starts; the test rig starts it the same way.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

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
	// HostPort is the frontend's address.
	HostPort string
	// UIURL is the UI's address when the UI is on.
	UIURL  string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Stop interrupts the server and waits until it has exited.
func (s *Server) Stop() error {
	_ = s.cmd.Process.Signal(os.Interrupt)
	<-s.exited
	return nil
}

// Kill ends the server with SIGKILL, as a crash would, and waits until it
// has exited; its SQLite file (Options.DBFile) keeps what was committed.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// StartError says the dev server did not come up, with the end of its output.
type StartError struct {
	// Exited is true when the process ended while starting (a port taken
	// between being picked and being bound is the usual cause), false when
	// it did not answer in time.
	Exited bool
	Cause  error
	Output string
}

func (e *StartError) Error() string {
	what := "did not answer within " + readyWithin.String()
	if e.Exited {
		what = fmt.Sprintf("exited while starting (%v)", e.Cause)
	}
	return fmt.Sprintf("the Temporal dev server %s; the end of its output:\n%s", what, e.Output)
}

// readyWithin bounds the wait for a started server to answer.
const readyWithin = time.Minute

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
	// A server that exits while starting gets one more try: its internal
	// ports are picked free and can be taken before they are bound.
	srv, err := launch(ctx, bin, o)
	var se *StartError
	if errors.As(err, &se) && se.Exited {
		fmt.Fprintf(o.Progress, "the Temporal dev server exited while starting; trying once more (%v)\n", se.Cause)
		srv, err = launch(ctx, bin, o)
	}
	if err != nil {
		return nil, fmt.Errorf("starting the Temporal dev server (%s): %w", bin, err)
	}
	return srv, nil
}

// launch runs the server once and waits until it answers, exits, or
// readyWithin passes.
func launch(ctx context.Context, bin string, o Options) (*Server, error) {
	hostPort := o.HostPort
	if hostPort == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		hostPort = l.Addr().String()
		_ = l.Close()
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return nil, fmt.Errorf("the address %q is not host:port: %w", hostPort, err)
	}
	args := []string{"server", "start-dev", "--ip", host, "--port", port, "--namespace", "default", "--log-level", "error",
		"--dynamic-config-value", "frontend.enableServerVersionCheck=false",
		"--dynamic-config-value", "system.enableActivityEagerExecution=true"}
	names := make([]string, 0, len(workflows.SearchAttributeTypes))
	for n := range workflows.SearchAttributeTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		args = append(args, "--search-attribute", n+"="+workflows.SearchAttributeTypes[n])
	}
	if o.UIPort == "" {
		args = append(args, "--headless")
	} else {
		args = append(args, "--ui-port", o.UIPort)
	}
	if o.DBFile != "" {
		args = append(args, "--db-filename", o.DBFile)
	}
	if o.CodecEndpoint != "" {
		args = append(args, "--ui-codec-endpoint", o.CodecEndpoint)
	}
	tail := &tailBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = io.MultiWriter(o.Log, tail), io.MultiWriter(o.Log, tail)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{HostPort: hostPort, cmd: cmd, exited: make(chan struct{})}
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(s.exited) }()
	if o.UIPort != "" {
		s.UIURL = "http://localhost:" + o.UIPort
	}
	deadline := time.Now().Add(readyWithin)
	for {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := client.DialContext(dctx, client.Options{HostPort: hostPort, Namespace: "default", Logger: quietLogger{}})
		cancel()
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, &StartError{Exited: true, Cause: waitErr, Output: tail.String()}
		case <-ctx.Done():
			_ = s.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Kill()
			return nil, &StartError{Cause: err, Output: tail.String()}
		}
	}
}

// tailBuffer keeps the last few KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailBytes = 4 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailBytes {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailBytes:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) == 0 {
		return "(nothing)"
	}
	return string(t.buf)
}

// quietLogger drops the SDK client's own log lines.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
