// Command demo is `make demo`. It compiles in seconds (standard library
// only) and starts the temporal CLI building at once, bin/lifeboat beside
// it; as soon as both are built it starts `lifeboat dev` and drives, through
// the lifeboat CLI exactly as an operator would, the runs that need no
// cluster — a tabletop of example (b), a drill with a manual task and a
// webhook — while the rest of the rig (a real Kubernetes control plane with a
// simulated node, real Velero and Argo CD, terraform) builds in the
// background with progress lines (testsuite/demo/rig --build-only). Then
// testsuite/demo/rig starts the rig and lifeboat dev configured for it and
// drives example (a) as a drill and a failover and the recovery plan (d) as
// a drill. Every evidence is printed; the UI stays up.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/lifeboat-dr/lifeboat/devserver/gobuild"
	"github.com/lifeboat-dr/lifeboat/testsuite/demo/demokit"
)

func main() {
	lifeboat := flag.String("lifeboat", "bin/lifeboat", "the lifeboat binary")
	version := flag.String("build", "", "build the lifeboat binary first, as this version (while the temporal CLI builds)")
	exitAfter := flag.Bool("exit", os.Getenv("DEMO_EXIT") == "1", "stop everything after the runs instead of leaving the UI up")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo(ctx, *lifeboat, *version, *exitAfter); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func demo(ctx context.Context, lifeboat, version string, exitAfter bool) error {
	began := demoStart()
	bin, err := filepath.Abs(lifeboat)
	if err != nil {
		return err
	}
	for _, port := range []string{"7233", "8233"} {
		if l, err := net.Listen("tcp", "127.0.0.1:"+port); err != nil {
			return fmt.Errorf("port %s is in use — is `lifeboat dev` or another demo already running? Stop it first", port)
		} else {
			l.Close()
		}
	}
	svcURL, hookURL, err := startLocalServices()
	if err != nil {
		return err
	}
	state, err := filepath.Abs(".lifeboat")
	if err != nil {
		return err
	}
	_ = os.RemoveAll(filepath.Join(state, "demo-rig"))
	// A fresh evidence directory: the demo verifies every record in it.
	_ = os.RemoveAll(filepath.Join(state, "evidence"))

	demokit.Say("building the temporal CLI (the dev server) and bin/lifeboat if they are not cached yet; the tabletop and the local drill run as soon as they are, while the rest of the rig (Kubernetes, terraform, Velero, Argo CD: ~20 min the first time on 2 cores) builds in the background")
	built := make(chan error, 1)
	go func() { built <- buildLifeboat(ctx, bin, version) }()
	if _, err := gobuild.Temporal(ctx, os.Stdout); err != nil {
		return err
	}
	if err := <-built; err != nil {
		return err
	}
	rigProgram := filepath.Join(state, "bin", "demo-rig")
	rigBuild := exec.CommandContext(ctx, "sh", "-c", `go build -o "$0" ./testsuite/demo/rig && exec "$0" --build-only`, rigProgram)
	rigBuild.Stdout = &demokit.Prefixed{W: os.Stdout, Prefix: "  [rig, building in the background] "}
	rigBuild.Stderr = rigBuild.Stdout
	if err := rigBuild.Start(); err != nil {
		return err
	}

	catalog := filepath.Join(state, "demo-catalog")
	if err := writeLocalCatalog(catalog, svcURL, hookURL); err != nil {
		return err
	}
	local := filepath.Join(state, "demo-local.yaml")
	if err := os.WriteFile(local, []byte(fmt.Sprintf(localConfig, catalog)+fmt.Sprintf(demokit.SignaturesConfig, state)), 0o644); err != nil {
		return err
	}
	if err := os.Setenv("LIFEBOAT_CONFIG", local); err != nil {
		return err
	}
	stopDev, err := demokit.StartDev(ctx, bin, local)
	if err != nil {
		return err
	}
	demokit.Say("1/5 tabletop of warm-standby-failover: nothing is executed, every step is acknowledged through the CLI")
	if err := demokit.Drive(ctx, bin, "tabletop", "warm-standby-failover", "quarterly tabletop exercise"); err != nil {
		stopDev()
		return err
	}
	fmt.Printf("\n==> first evidence %s after make demo started\n", time.Since(began).Round(time.Second))
	demokit.Say("2/5 drill of local-service-drill: http.check, a manual task, an approval, notify.webhook, evidence.store")
	if err := demokit.Drive(ctx, bin, "drill", "local-service-drill", "demo drill"); err != nil {
		stopDev()
		return err
	}
	stopDev() // it comes back configured for the rig, on the same state
	demokit.Say("waiting for the rig build to finish (its progress lines above); the runs so far stay in .lifeboat/")
	if err := rigBuild.Wait(); err != nil {
		return fmt.Errorf("building the rig: %w", err)
	}
	args := []string{"--lifeboat", bin, "--shown-as", lifeboat, "--state", state, "--svc", svcURL, "--hook", hookURL}
	if exitAfter {
		args = append(args, "--exit")
	}
	rig := exec.CommandContext(ctx, rigProgram, args...)
	rig.Stdout, rig.Stderr = os.Stdout, os.Stderr
	rig.Cancel = func() error { return rig.Process.Signal(os.Interrupt) }
	rig.WaitDelay = time.Minute
	return rig.Run()
}

// buildLifeboat builds the lifeboat binary at bin (nothing when version is
// empty: make build has).
func buildLifeboat(ctx context.Context, bin, version string) error {
	if version == "" {
		return nil
	}
	fmt.Println("building bin/lifeboat…")
	args := append(append([]string{"build"}, gobuild.VCSFlags(".")...), "-ldflags", "-X main.version="+version, "-o", bin, "./cmd/lifeboat")
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("building lifeboat: %w\n%s", err, out)
	}
	fmt.Println("bin/lifeboat built")
	return nil
}

// demoStart is when make demo started (DEMO_STARTED, seconds since the
// epoch, set by the Makefile before it builds lifeboat), or now.
func demoStart() time.Time {
	if sec, err := strconv.ParseInt(os.Getenv("DEMO_STARTED"), 10, 64); err == nil {
		return time.Unix(sec, 0)
	}
	return time.Now()
}

// localConfig is the worker's view before the rig is up: the catalog (the
// demo's keys follow, demokit.SignaturesConfig); no cluster, terraform or
// Cloudflare (their runbooks wait).
const localConfig = `# Written by make demo: the worker before the rig is built (no cluster yet).
catalog: [%s]
`

// writeLocalCatalog holds what runs without the rig: example (b) for the
// tabletop and the local-service drill.
func writeLocalCatalog(dir, svcURL, hookURL string) error {
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile("runbooks/examples/warm-standby-failover.yaml")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "warm-standby-failover.yaml"), b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "local-service-drill.yaml"), []byte(fmt.Sprintf(demokit.LocalDrill, svcURL, hookURL)), 0o644)
}

// startLocalServices serves the demo Case API and a webhook receiver on loopback.
func startLocalServices() (svcURL, hookURL string, err error) {
	svc := http.NewServeMux()
	svc.HandleFunc("/internal/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, `{"status":"healthy"}`) })
	svc.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Case Intake API (demo)") })
	hook := http.NewServeMux()
	hook.HandleFunc("/hooks/incident", func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Text string }
		_ = json.NewDecoder(r.Body).Decode(&m)
		fmt.Printf("  [webhook receiver] %s\n", m.Text)
	})
	serve := func(h http.Handler) (string, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		go func() { _ = http.Serve(l, h) }()
		return "http://" + l.Addr().String(), nil
	}
	if svcURL, err = serve(svc); err != nil {
		return
	}
	hookURL, err = serve(hook)
	return
}
