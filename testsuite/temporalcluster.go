package testsuite

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TemporalServerVersion is the Temporal server the rig's cluster runs: the
// one the rig's temporal CLI (v1.5.1) embeds, so its packages come from the
// build cache the CLI filled.
const TemporalServerVersion = "v1.29.1"

// TemporalServerBinaries are the cluster's programs.
type TemporalServerBinaries struct {
	Server, SQLTool, UI string
}

// EnsureTemporalServer returns the cached Temporal server, its SQL schema
// tool and the UI server, building them once (built after the temporal
// CLI, in its lane: little is left to compile).
func EnsureTemporalServer(ctx context.Context, progress io.Writer) (TemporalServerBinaries, error) {
	paths, err := wrapperBuild{wrapper: "temporalrig", what: "the Temporal server", version: TemporalServerVersion, name: "temporal-server", minutes: 3,
		pkgs:  []string{"go.temporal.io/server/cmd/server", "go.temporal.io/server/cmd/tools/sql", "github.com/temporalio/ui-server/v2/cmd/server"},
		bins:  []string{"temporal-server", "temporal-sql-tool", "temporal-ui-server"},
		named: true,
	}.ensure(ctx, progress)
	if err != nil {
		return TemporalServerBinaries{}, err
	}
	return TemporalServerBinaries{Server: paths[0], SQLTool: paths[1], UI: paths[2]}, nil
}

// TemporalCluster is a real Temporal server — frontend, history, matching
// and worker services in one process, as a single-node cluster runs — on
// PostgreSQL persistence, its frontend serving mutual TLS with the rig's
// CA: a worker or the CLI reaches it exactly as it would Temporal Cloud,
// through a config's temporal.tls block.
type TemporalCluster struct {
	// HostPort is the frontend's gRPC address; Namespace the one made
	// ready (search attributes registered by the caller's setup).
	HostPort, Namespace string
	// CA, ClientCert and ClientKey are PEM files: the CA that signed the
	// frontend's certificate, and a client certificate it accepts.
	CA, ClientCert, ClientKey string
	// ServerName is the name the frontend's certificate carries.
	ServerName string

	dir  string
	bins TemporalServerBinaries
	pg   pgRoot
	db   *PGServer
	proc *proc
	ui   *proc
}

// temporalDBPassword is the rig database's superuser password (a loopback
// server holding only the cluster's state).
const temporalDBPassword = "temporal-rig-db"

// StartTemporalCluster initialises PostgreSQL, sets up Temporal's schemas
// with its own tool, issues the certificates, starts the server and
// registers the namespace "default".
func StartTemporalCluster(ctx context.Context, dir string, progress io.Writer) (c *TemporalCluster, err error) {
	if progress == nil {
		progress = io.Discard
	}
	bins, err := EnsureTemporalServer(ctx, progress)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	c = &TemporalCluster{dir: dir, bins: bins, Namespace: "default", ServerName: "temporal-frontend"}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if c.pg, err = newPGRoot(); err != nil {
		return nil, err
	}
	ports, err := freeLowPorts(10)
	if err != nil {
		return nil, err
	}
	if c.db, err = c.pg.initdb(ctx, "temporal-db", "temporal", ports[0], temporalDBPassword); err != nil {
		return nil, err
	}
	if err := c.db.start(ctx); err != nil {
		return nil, err
	}
	for _, s := range []struct{ db, schema string }{{"temporal", "postgresql/v12/temporal"}, {"temporal_visibility", "postgresql/v12/visibility"}} {
		for _, args := range [][]string{{"create-database"}, {"setup-schema", "-v", "0.0"}, {"update-schema", "--schema-name", s.schema}} {
			if err := c.sqlTool(ctx, s.db, args...); err != nil {
				return nil, err
			}
		}
	}
	if err := c.issueCerts(); err != nil {
		return nil, err
	}
	c.HostPort = fmt.Sprintf("127.0.0.1:%d", ports[1])
	if err := c.writeConfig(ports[1:]); err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	if err := c.registerNamespace(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "rig: Temporal server %s on PostgreSQL, mTLS frontend %s (%s)\n", TemporalServerVersion, c.HostPort, time.Since(started).Round(100*time.Millisecond))
	return c, nil
}

func (c *TemporalCluster) sqlTool(ctx context.Context, db string, args ...string) error {
	base := []string{"--plugin", "postgres12", "--ep", "127.0.0.1", "-p", strconv.Itoa(c.db.Port), "-u", "postgres", "--pw", temporalDBPassword, "--db", db}
	cmd := exec.CommandContext(ctx, c.bins.SQLTool, append(base, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("temporal-sql-tool %s on %s: %v: %s", args[0], db, err, out)
	}
	return nil
}

// issueCerts writes the rig CA, the frontend's certificate and a client's.
func (c *TemporalCluster) issueCerts() error {
	ca, err := newRigCA(filepath.Join(c.dir, "tls"), "lifeboat-rig-temporal-ca")
	if err != nil {
		return err
	}
	c.CA = ca.Cert
	if _, _, err := ca.issue("frontend", c.ServerName, true); err != nil {
		return err
	}
	c.ClientCert, c.ClientKey, err = ca.issue("client", "lifeboat-worker", false)
	return err
}

// start runs the server and waits until the frontend answers over mTLS.
func (c *TemporalCluster) start(ctx context.Context) error {
	var err error
	c.proc, err = startProc("temporal-server", c.bins.Server, filepath.Join(c.dir, "temporal-server.log"),
		"--root", c.dir, "--config", "config", "--env", "rig", "--allow-no-auth", "start")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err, dead := c.proc.exited(); dead {
			return fmt.Errorf("the Temporal server exited (%v); its log ends:\n%s", err, c.proc.lastLog())
		}
		cl, err := c.Dial(ctx, "temporal-system")
		if err == nil {
			cl.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the Temporal server did not answer within 2 minutes (%v); its log ends:\n%s", err, c.proc.lastLog())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TLSConfig is what a client presents and trusts: the config's tls block.
func (c *TemporalCluster) TLSConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
	if err != nil {
		return nil, err
	}
	pool, err := certPool(c.CA)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: c.ServerName, MinVersion: tls.VersionTLS12}, nil
}

// Dial connects to a namespace of the cluster over mTLS.
func (c *TemporalCluster) Dial(ctx context.Context, namespace string) (client.Client, error) {
	t, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return client.DialContext(dctx, client.Options{HostPort: c.HostPort, Namespace: namespace, ConnectionOptions: client.ConnectionOptions{TLS: t}, Logger: quiet})
}

// registerNamespace registers "default" and waits until the frontend
// serves it (namespaces reach the frontend's cache within seconds).
func (c *TemporalCluster) registerNamespace(ctx context.Context) error {
	t, err := c.TLSConfig()
	if err != nil {
		return err
	}
	nc, err := client.NewNamespaceClient(client.Options{HostPort: c.HostPort, ConnectionOptions: client.ConnectionOptions{TLS: t}, Logger: quiet})
	if err != nil {
		return err
	}
	defer nc.Close()
	err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{Namespace: c.Namespace, WorkflowExecutionRetentionPeriod: durationpb.New(72 * time.Hour)})
	if err != nil {
		return fmt.Errorf("registering namespace %s: %w", c.Namespace, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		cl, err := c.Dial(ctx, c.Namespace)
		if err == nil {
			_, err = cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1})
			cl.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s not served within a minute: %v", c.Namespace, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// quiet drops the SDK client's own log lines.
var quiet = sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))

// Kill ends the server with SIGKILL (its state stays in PostgreSQL).
func (c *TemporalCluster) Kill() { c.proc.kill() }

// Restart kills the server and starts it again on the same database.
func (c *TemporalCluster) Restart(ctx context.Context) error {
	c.Kill()
	return c.start(ctx)
}

// StartUI starts the Temporal UI server (the one built with the server)
// pointed at the frontend over mTLS with the client certificate, as a site
// runs it beside its cluster, and returns its URL once it answers.
func (c *TemporalCluster) StartUI(ctx context.Context) (string, error) {
	ports, err := freePorts(1)
	if err != nil {
		return "", err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	dir := filepath.Join(c.dir, "ui")
	if err := os.MkdirAll(filepath.Join(dir, "config"), 0o755); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`temporalGrpcAddress: %s
host: 127.0.0.1
port: %d
enableUi: true
defaultNamespace: %s
cors: {cookieInsecure: true, allowOrigins: [%q]}
tls: {caFile: %q, certFile: %q, keyFile: %q, serverName: %s, enableHostVerification: true}
`, c.HostPort, ports[0], c.Namespace, url, c.CA, c.ClientCert, c.ClientKey, c.ServerName)
	if err := os.WriteFile(filepath.Join(dir, "config", "rig.yaml"), []byte(cfg), 0o644); err != nil {
		return "", err
	}
	c.ui, err = startProc("temporal-ui-server", c.bins.UI, filepath.Join(dir, "ui-server.log"), "--root", dir, "--config", "config", "--env", "rig", "start")
	if err != nil {
		return "", err
	}
	if err := waitHTTP(ctx, c.ui, url+"/api/v1/namespaces/"+c.Namespace+"/workflows", "", time.Minute); err != nil {
		return "", fmt.Errorf("the Temporal UI server: %w", err)
	}
	return url, nil
}

// Stop stops the server, its UI and its database and removes the database.
func (c *TemporalCluster) Stop() {
	if c == nil {
		return
	}
	if c.ui != nil {
		c.ui.stop()
	}
	c.proc.stop()
	if c.db != nil {
		c.db.proc.kill()
	}
	c.pg.remove()
}

// writeConfig writes config/rig.yaml and the dynamic config: ports are the
// frontend's gRPC, then membership and gRPC ports of each service.
func (c *TemporalCluster) writeConfig(ports []int) error {
	if err := os.MkdirAll(filepath.Join(c.dir, "config"), 0o755); err != nil {
		return err
	}
	dynamic := filepath.Join(c.dir, "config", "dynamic.yaml")
	// Search attributes readable the moment they are registered (as the dev
	// server does), and the worker-versioning APIs on.
	if err := os.WriteFile(dynamic, []byte(`system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
frontend.workerVersioningWorkflowAPIs:
  - value: true
system.enableDeploymentVersions:
  - value: true
`), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(c.dir, "config", "rig.yaml"))
	if err != nil {
		return err
	}
	defer f.Close()
	return clusterConfig.Execute(f, map[string]any{
		"DBPort": c.db.Port, "DBPassword": temporalDBPassword, "Ports": ports, "Dynamic": dynamic,
		"CA": c.CA, "Cert": filepath.Join(c.dir, "tls", "frontend.crt"), "Key": filepath.Join(c.dir, "tls", "frontend.key"),
		"ClientCert": c.ClientCert, "ClientKey": c.ClientKey, "ServerName": c.ServerName,
	})
}

var clusterConfig = template.Must(template.New("rig.yaml").Parse(strings.TrimSpace(`
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:
      sql: {pluginName: postgres12, databaseName: temporal, connectAddr: "127.0.0.1:{{.DBPort}}", connectProtocol: tcp, user: postgres, password: "{{.DBPassword}}", maxConns: 20, maxIdleConns: 20, maxConnLifetime: 1h}
    visibility:
      sql: {pluginName: postgres12, databaseName: temporal_visibility, connectAddr: "127.0.0.1:{{.DBPort}}", connectProtocol: tcp, user: postgres, password: "{{.DBPassword}}", maxConns: 5, maxIdleConns: 5, maxConnLifetime: 1h}
global:
  membership: {maxJoinDuration: 30s, broadcastAddress: 127.0.0.1}
  tls:
    frontend:
      server: {certFile: "{{.Cert}}", keyFile: "{{.Key}}", clientCaFiles: ["{{.CA}}"], requireClientAuth: true}
      client: {serverName: "{{.ServerName}}", rootCaFiles: ["{{.CA}}"]}
    systemWorker:
      certFile: "{{.ClientCert}}"
      keyFile: "{{.ClientKey}}"
      client: {serverName: "{{.ServerName}}", rootCaFiles: ["{{.CA}}"]}
services:
  frontend:
    rpc: {grpcPort: {{index .Ports 0}}, membershipPort: {{index .Ports 1}}, httpPort: {{index .Ports 2}}, bindOnLocalHost: true}
  history:
    rpc: {grpcPort: {{index .Ports 3}}, membershipPort: {{index .Ports 4}}, bindOnLocalHost: true}
  matching:
    rpc: {grpcPort: {{index .Ports 5}}, membershipPort: {{index .Ports 6}}, bindOnLocalHost: true}
  worker:
    rpc: {grpcPort: {{index .Ports 7}}, membershipPort: {{index .Ports 8}}, bindOnLocalHost: true}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active: {enabled: true, initialFailoverVersion: 1, rpcName: frontend, rpcAddress: "127.0.0.1:{{index .Ports 0}}"}
dcRedirectionPolicy: {policy: noop}
dynamicConfigClient: {filepath: "{{.Dynamic}}", pollInterval: 10s}
`) + "\n"))
