package testsuite

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// pgRoot is a directory of PostgreSQL servers of the rig, run as the
// postgres user when the tests run as root (PostgreSQL refuses root).
type pgRoot struct {
	// Root holds the servers' data directories and sockets.
	Root string
	cred *syscall.Credential
}

// newPGRoot makes a root under the system's temporary directory: the
// postgres user must reach it, and a test's directory is root's alone.
func newPGRoot() (pgRoot, error) {
	var r pgRoot
	if _, err := os.Stat(filepath.Join(PostgresBin, "postgres")); err != nil {
		return r, fmt.Errorf("PostgreSQL 15 is not installed (%v): `make tools` installs Debian's postgresql-15", err)
	}
	if os.Getuid() == 0 {
		u, err := user.Lookup(pgUser)
		if err != nil {
			return r, fmt.Errorf("running as root, the rig runs PostgreSQL as user %s, which is missing (Debian's postgresql-15 creates it): %w", pgUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		r.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	root, err := os.MkdirTemp("", "lifeboat-pg-")
	if err != nil {
		return r, err
	}
	r.Root = root
	return r, r.own(root, 0o755)
}

// initdb makes a server's data directory (dir under the root) listening
// on 127.0.0.1:port with its socket in the root (pg_rewind copies a data
// directory and cannot read a socket), fsync off; password is the
// postgres superuser's. It does not start it.
func (r pgRoot) initdb(ctx context.Context, name, dir string, port int, password string, args ...string) (*PGServer, error) {
	s := &PGServer{Name: name, DataDir: filepath.Join(r.Root, dir), Port: port, cred: r.cred, password: password}
	pw := filepath.Join(r.Root, name+".pwfile")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(pw)
	if err := r.own(pw, 0o600); err != nil {
		return nil, err
	}
	args = append([]string{"-D", s.DataDir, "-U", "postgres", "--pwfile", pw, "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"}, args...)
	if out, err := r.tool(ctx, "initdb", args...); err != nil {
		return nil, fmt.Errorf("initdb %s: %v: %s", name, err, out)
	}
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nfsync = off\n", r.Root)
	return s, appendFile(filepath.Join(s.DataDir, "postgresql.conf"), conf)
}

// remove stops every server in the root, those started with pg_ctl
// included, and removes the data (kept with LIFEBOAT_KEEP_PG set).
func (r pgRoot) remove() {
	if r.Root == "" {
		return
	}
	pids, _ := filepath.Glob(filepath.Join(r.Root, "*", "postmaster.pid"))
	for _, pid := range pids {
		_, _ = r.tool(context.Background(), "pg_ctl", "stop", "-m", "immediate", "-D", filepath.Dir(pid))
	}
	if os.Getenv("LIFEBOAT_KEEP_PG") == "" {
		_ = os.RemoveAll(r.Root)
	}
}

// own gives the PostgreSQL user a path the rig made.
func (r pgRoot) own(path string, mode os.FileMode) error {
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	if r.cred == nil {
		return nil
	}
	return os.Chown(path, int(r.cred.Uid), int(r.cred.Gid))
}

func (r pgRoot) tool(ctx context.Context, name string, args ...string) (string, error) {
	return r.toolEnv(ctx, nil, name, args...)
}

func (r pgRoot) toolEnv(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(PostgresBin, name), args...)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), env...)
	if r.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}
