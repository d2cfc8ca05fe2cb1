package testsuite

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/lifeboat-dr/lifeboat/devserver/gobuild"
)

// proc is a rig process whose output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has ended
	err  error         // its exit error, once done is closed
}

func startProc(name, bin, logPath string, args ...string) (*proc, error) {
	return startProcEnv(name, bin, logPath, nil, args...)
}

// startProcEnv starts a rig process with extra environment variables.
func startProcEnv(name, bin, logPath string, env []string, args ...string) (*proc, error) {
	return startProcAs(name, bin, logPath, nil, env, args...)
}

// startProcAs starts a rig process as another user (cred; nil: the test's
// own), with extra environment variables.
func startProcAs(name, bin, logPath string, cred *syscall.Credential, env []string, args ...string) (*proc, error) {
	// Appended to: a process started again (a region brought back) keeps
	// its first life's log.
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Its own process group (stop signals the whole group), and killed if
	// the test binary dies without stopping it (a panic, a -timeout): a
	// rig left running would slow every later run on a 2-core machine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if cred != nil {
		cmd.Dir = os.TempDir() // the other user may not enter the test's directory
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// stop terminates the process (and its group), killing it after a grace
// period. Stopping a stopped process does nothing.
func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	if _, dead := p.exited(); dead {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// kill ends the process (and its group) with SIGKILL at once and waits
// until it is gone.
func (p *proc) kill() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	if _, dead := p.exited(); dead {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// exited returns the process's exit error if it has ended.
func (p *proc) exited() (error, bool) {
	select {
	case <-p.done:
		return p.err, true
	default:
		return nil, false
	}
}

// lastLog returns the end of the process's log, for error messages.
func (p *proc) lastLog() string {
	b, _ := os.ReadFile(p.log)
	return gobuild.Tail(b, 1500)
}

// waitHTTP polls url until it answers 200, the process dies or ctx ends.
func waitHTTP(ctx context.Context, p *proc, url, token string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec: readiness poll of our own loopback server
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if err, dead := p.exited(); dead {
			return fmt.Errorf("%s exited (%v) before it was ready; its log ends:\n%s", p.name, err, p.lastLog())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s was not ready at %s within %s (last answer: %s); its log ends:\n%s", p.name, url, timeout, last, p.lastLog())
}

// waitListening waits until addr accepts TCP connections, the process dies
// or the timeout passes.
func waitListening(ctx context.Context, p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err, dead := p.exited(); dead {
			return fmt.Errorf("%s exited (%v) before it listened on %s; its log ends:\n%s", p.name, err, addr, p.lastLog())
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not listen on %s within %s; its log ends:\n%s", p.name, addr, timeout, p.lastLog())
}

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// freeLowPorts is freePorts below 32768, outside Linux's ephemeral range:
// the Temporal server stores its membership ports as a PostgreSQL smallint.
func freeLowPorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, fmt.Errorf("no %d free ports below 32768", n)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000)))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
