package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Local is what the worker's host has of PostgreSQL: its tools and the
// instances whose data directories are here.
type Local struct {
	// Bin is the directory of pg_ctl, pg_basebackup and pg_rewind.
	Bin string `yaml:"bin"`
	// RunAs is the OS user the tools run as when the worker runs as root
	// (PostgreSQL refuses to run as root); empty: the worker's own user.
	RunAs string `yaml:"runAs"`
	// Instances are the data directories the actions may work on, by name.
	Instances map[string]Instance `yaml:"instances"`
}

// Instance is a PostgreSQL data directory on the worker's host.
type Instance struct {
	DataDir string `yaml:"dataDir"`
	Port    int    `yaml:"port"`
	// DrillClone marks an instance a drill may create (a clone of a
	// standby) and its teardown remove; no other instance is ever removed.
	DrillClone bool `yaml:"drillClone"`
}

// cloneMarker is the file lifeboat writes into a clone it made, naming the
// drill: the only data directories it ever deletes carry it.
const cloneMarker = "lifeboat-drill-clone"

// instance returns a declared instance.
func (l Local) instance(name, action string) (Instance, error) {
	inst, ok := l.Instances[name]
	if !ok {
		names := make([]string, 0, len(l.Instances))
		for n := range l.Instances {
			names = append(names, n)
		}
		slices.Sort(names)
		return Instance{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"%s: no PostgreSQL instance %q on this worker: declare it under postgres.instances in the worker config (declared: %s)",
			action, name, strings.Join(names, ", ")), "ConfigError", nil)
	}
	if l.Bin == "" {
		return Instance{}, temporal.NewNonRetryableApplicationError(action+": postgres.bin is not set in the worker config: name the directory of pg_ctl, pg_basebackup and pg_rewind", "ConfigError", nil)
	}
	return inst, nil
}

// drillClone returns a drill clone instance, refusing one outside a drill
// and an instance not declared as a drill clone: a drill's clone argument
// can never point a step at production's data.
func (l Local) drillClone(name string, in runbooks.StepInput, action string) (Instance, error) {
	if !in.Drill() {
		return Instance{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"%s: clone is a drill's argument (spec.drill.with.%s.clone): a %s works on the real server; remove clone from the step", action, in.StepID, in.Mode), "InvalidArgument", nil)
	}
	inst, err := l.instance(name, action)
	if err != nil {
		return Instance{}, err
	}
	if !inst.DrillClone {
		return Instance{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"%s refused in a drill: instance %s is not declared drillClone: true in the worker config, so it may hold production data; nothing was changed", action, name), "DrillScope", nil)
	}
	return inst, nil
}

// tool runs a PostgreSQL tool (as RunAs when the worker is root) with the
// server's password in PGPASSWORD, never on the command line, and nothing
// else of the worker's environment: a server pg_ctl starts inherits it,
// and a database superuser can read a server's environment.
func (l Local) tool(ctx context.Context, password, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(l.Bin, name), args...)
	cmd.Dir = os.TempDir() // the tool's user may not enter the worker's directory
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "PGCONNECT_TIMEOUT=10"}
	if password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+password)
	}
	if l.RunAs != "" && os.Getuid() == 0 {
		cred, err := credential(l.RunAs)
		if err != nil {
			return "", err
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("postgres.runAs: no user %s on the worker's host: %v", name, err), "ConfigError", nil)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// mkdirForTool makes a directory RunAs may write into (a clone's parent):
// one that exists already is left as it is — never handed to another user.
func (l Local) mkdirForTool(dir string) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if l.RunAs == "" || os.Getuid() != 0 {
		return nil
	}
	cred, err := credential(l.RunAs)
	if err != nil {
		return err
	}
	return os.Chown(dir, int(cred.Uid), int(cred.Gid))
}

// running reports whether the instance's server runs (pg_ctl status).
func (l Local) running(ctx context.Context, inst Instance) bool {
	_, err := l.tool(ctx, "", "pg_ctl", "status", "-D", inst.DataDir)
	return err == nil
}

// start starts the instance's server with its own configuration on its
// declared port (pg_rewind copies the source's configuration files, port
// included), plus options (a drill's clone: cut from everything of
// production's), and waits until it accepts connections.
func (l Local) start(ctx context.Context, inst Instance, options ...string) error {
	out, err := l.tool(ctx, "", "pg_ctl", "start", "-w", "-t", "120", "-D", inst.DataDir, "-l", filepath.Join(inst.DataDir, "lifeboat-server.log"),
		"-o", strings.Join(append([]string{fmt.Sprintf("-p %d", inst.Port)}, options...), " "))
	if err != nil {
		return fmt.Errorf("pg_ctl start of %s: %v: %s", inst.DataDir, err, out)
	}
	return nil
}

// stop stops the instance's server (mode fast: clean, flushing its WAL to
// its standbys; immediate: at once), if it runs.
func (l Local) stop(ctx context.Context, inst Instance, mode string) error {
	if !l.running(ctx, inst) {
		return nil
	}
	if out, err := l.tool(ctx, "", "pg_ctl", "stop", "-w", "-t", "120", "-m", mode, "-D", inst.DataDir); err != nil {
		return fmt.Errorf("pg_ctl stop of %s: %v: %s", inst.DataDir, err, out)
	}
	return nil
}

// source is a connection string as a tool takes it: without its password
// (which goes to PGPASSWORD, never on a command line), every other setting
// (sslmode, sslrootcert…) kept.
type source struct {
	conninfo   string // the connection string without its password
	password   string
	host, port string
}

func sourceOf(dsn string) (source, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return source{}, errors.New("the connection string does not parse")
	}
	return source{conninfo: withoutPassword(dsn), password: cfg.Password, host: cfg.Host, port: strconv.Itoa(int(cfg.Port))}, nil
}

var passwordSetting = regexp.MustCompile(`(^|\s)password\s*=\s*('(\\.|[^'])*'|\S*)`)

// withoutPassword removes the password from a connection string, URL
// (postgres://user:pw@host/db) or keyword=value form.
func withoutPassword(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		q.Del("password")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return strings.TrimSpace(passwordSetting.ReplaceAllString(dsn, ""))
}
