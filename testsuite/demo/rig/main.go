// Command rig is make demo's second program (testsuite/demo runs it): with
// --build-only it builds the rig's parts into the cache (while the first
// program's runs go on); otherwise it starts the two-region rig, lifeboat
// dev configured for it, and drives example (a) as a drill, loses the
// primary region, drives the failover into DR and, once the primary is
// back, the failback home, then the recovery plan (d) as a drill; it
// prints the readiness of example (a), a table of the runs, the evidence
// verified, and the commands to try next.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lifeboat-dr/lifeboat/testsuite"
	"github.com/lifeboat-dr/lifeboat/testsuite/demo/demokit"
)

func main() {
	buildOnly := flag.Bool("build-only", false, "build the rig's parts into the cache, then exit")
	bin := flag.String("lifeboat", "bin/lifeboat", "the lifeboat binary (absolute)")
	lifeboat := flag.String("shown-as", "bin/lifeboat", "how the commands to try name it")
	state := flag.String("state", ".lifeboat", "the demo's state directory (absolute)")
	svcURL := flag.String("svc", "", "the demo Case API's URL")
	hookURL := flag.String("hook", "", "the webhook receiver's URL")
	exitAfter := flag.Bool("exit", false, "stop after the runs instead of leaving the UI up")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *buildOnly {
		err = testsuite.EnsureRig(ctx, os.Stdout)
	} else {
		err = rigDemo(ctx, *bin, *lifeboat, *state, *svcURL, *hookURL, *exitAfter)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// rigDemo is the demo's part on the rig.
func rigDemo(ctx context.Context, bin, lifeboat, state, svcURL, hookURL string, exitAfter bool) error {
	catalog := filepath.Join(state, "demo-catalog")
	demokit.Say("starting the rig: two regions, each a Kubernetes control plane + simulated node + real Velero, both Veleros on one S3 bucket (the DR cluster's ReadOnly); real Argo CD in the DR cluster syncing from a local git repository; Cloudflare emulator; terraform. The primary's Velero backs up case-management twice")
	stack, err := testsuite.StartStack(ctx, filepath.Join(state, "demo-rig"))
	if err != nil {
		return err
	}
	defer stack.Stop()
	config := filepath.Join(state, "demo-worker.yaml")
	if err := writeCatalog(catalog, stack, svcURL, hookURL); err != nil {
		return err
	}
	dbConfig, err := yaml.Marshal(map[string]any{"secrets": map[string]any{"dirs": []string{stack.SecretsDir}}, "postgres": stack.DB.Instances()})
	if err != nil {
		return err
	}
	if err := os.WriteFile(config, []byte(fmt.Sprintf(workerConfig, catalog, stack.BaseDir, stack.Kubeconfig, stack.Terraform, stack.Cloudflare.URL)+string(dbConfig)+fmt.Sprintf(demokit.SignaturesConfig, state)), 0o644); err != nil {
		return err
	}
	// The demo's own CLI calls see what the worker sees, as the README tells a user to.
	if err := os.Setenv("LIFEBOAT_CONFIG", config); err != nil {
		return err
	}
	fmt.Printf("rig up: primary cluster %s (context %s), DR cluster %s (context %s), kubeconfig %s; the bucket both Veleros use %s; Argo CD's git repository %s; Cloudflare emulator %s; worker config %s\n",
		stack.Primary.Kube.URL, testsuite.PrimaryKubeContext, stack.DR.Kube.URL, testsuite.KubeContext, stack.Kubeconfig, stack.Store.URL, stack.ArgoCD.RepoURL, stack.Cloudflare.URL, config)
	for _, b := range stack.Backups {
		fmt.Printf("the primary's Velero backed up case-management: backup %s started %s\n", b.Name, b.Started.Format(time.RFC3339))
	}
	fmt.Printf("the case database: primary 127.0.0.1:%d (ca-central-1) taking a new case every half second, streaming standby 127.0.0.1:%d (ca-west-1)\n", stack.DB.Primary.Port, stack.DB.Standby.Port)

	demokit.Say("validating the catalog")
	if err := demokit.Show(ctx, bin, "validate", catalog); err != nil {
		return err
	}
	demokit.Say("starting lifeboat dev again, its worker configured for the rig")
	stopDev, err := demokit.StartDev(ctx, bin, config, "LIFEBOAT_DEMO_CF_TOKEN="+testsuite.PlantedCFToken)
	if err != nil {
		return err
	}
	defer stopDev()

	demokit.Say("3/5 drill of case-management-region-failover on the rig: terraform, identity + kube.canI, secrets, a real Velero restore of the latest backup into the drill namespace, a real Argo CD sync of the drill's Application, scale, waitReady, business journey; traffic shift skipped; teardown")
	if err := demokit.Show(ctx, bin, "plan", filepath.Join(catalog, "case-management-region-failover.yaml")); err != nil {
		return err
	}
	if err := demokit.Drive(ctx, bin, "drill", "case-management-region-failover", "quarterly restore drill"); err != nil {
		return err
	}
	demokit.Say(fmt.Sprintf("Velero's own view of the drill's restore (or: kubectl --kubeconfig %s get restores.velero.io -A)", stack.Kubeconfig))
	if out, err := stack.DR.Velero.CLI(ctx, "restore", "get"); err != nil {
		return fmt.Errorf("velero restore get: %w\n%s", err, out)
	} else {
		fmt.Print(out)
	}
	demokit.Say("the region is lost: every process of the primary cluster (etcd, kube-apiserver, kube-controller-manager, Velero) and its database are killed with SIGKILL")
	stack.LoseRegion()
	fmt.Printf("primary cluster %s: no answer (%s)\n", stack.Primary.Kube.URL, testsuite.Unreachable(ctx, stack.Primary.Kube))
	demokit.Say("4/5 failover of case-management-region-failover into the DR cluster: the primary's latest backup restored there (after the DR Velero synced the bucket), the kinds checked, the database replica read and promoted, the data verified, Argo CD syncing case-intake, the business journey against the restored service, then the Cloudflare switch after an approval given through the CLI")
	failover, err := demokit.DriveRun(ctx, bin, "failover", "case-management-region-failover", "ca-central-1 is down")
	if err != nil {
		return err
	}
	showDNS(stack)
	demokit.Say(fmt.Sprintf("the real state: the DR cluster's restores (kubectl --kubeconfig %s --context %s get restores.velero.io -A shows the same) and the promoted database (psql)", stack.Kubeconfig, testsuite.KubeContext))
	if out, err := stack.DR.Velero.CLI(ctx, "restore", "get"); err != nil {
		return fmt.Errorf("velero restore get: %w\n%s", err, out)
	} else {
		fmt.Print(out)
	}
	if err := psql(ctx, stack.DB.Standby); err != nil {
		return err
	}
	demokit.Say("the primary region comes back: its processes start again on their data (its database as a stale second primary); then the failback brings the data home (pg_rewind, switchover, DR's objects restored into the primary through a backup in DR) and, after an approval, the traffic")
	if err := stack.BringBackPrimary(ctx); err != nil {
		return err
	}
	if _, err := demokit.DriveRun(ctx, bin, "failback", failover, "ca-central-1 is back"); err != nil {
		return err
	}
	showDNS(stack)
	if err := psql(ctx, stack.DB.Primary); err != nil {
		return err
	}
	demokit.Say("5/5 drill of the recovery plan region-ca-central-1-loss: case-management-region-failover as a member run, then, after an approval on the plan, local-service-drill (the rig has no shop cluster, so the demo's copy of the plan has it in warm-standby-failover's place); one evidence for the plan, one per member")
	if err := demokit.Show(ctx, bin, "plan", "region-ca-central-1-loss"); err != nil {
		return err
	}
	if err := demokit.Drive(ctx, bin, "drill", "region-ca-central-1-loss", "region-loss drill"); err != nil {
		return err
	}
	demokit.Say("readiness of the runbook the demo drilled and failed over: its latest drill and failover, the backup checked now against the real Velero")
	if err := demokit.Show(ctx, bin, "readiness", "--runbook", "case-management-region-failover"); err != nil {
		return err
	}
	ending, err := summary(ctx, bin, filepath.Join(state, "evidence"))
	if err != nil {
		return err
	}
	if exitAfter {
		fmt.Printf("\ndemo done: %s.\n", ending)
		return nil
	}
	if exitAfter {
		return nil
	}
	fmt.Printf(`
Try the CLI on this rig from another shell (the config points it at the demo catalog and cluster):
  export LIFEBOAT_CONFIG=%s
  source <(%[2]s completion bash)    # then: lifeboat approve <TAB>
  %[2]s drill schedule case-management-region-failover --cron "0 3 1 * *" --pause-on-failure
  %[2]s drill trigger lifeboat-drill-case-management-region-failover
  %[2]s drill schedules
  %[2]s evidence list
  %[2]s reenact RUN                  # a run id from evidence list: the same runbook text again, then vs now
  %[2]s replay testsuite/histories/*.json RUN
  %[2]s readiness
  %[2]s invariant case-management-region-failover
`, filepath.Join(".lifeboat", "demo-worker.yaml"), lifeboat)
	fmt.Printf("\ndemo done: %s; the runs are in the Temporal UI at http://localhost:8233 (Ctrl-C stops the demo); try the commands above next.\n", ending)
	<-ctx.Done()
	return nil
}

// showDNS prints the record the failover and the failback move.
func showDNS(stack *testsuite.Stack) {
	for _, r := range stack.Cloudflare.Records(stack.Zone, "case.example.com") {
		fmt.Printf("Cloudflare emulator: %s %s → %s (ttl %d)\n", r.Name, r.Type, r.Content, r.TTL)
	}
}

// psql shows a database server's role and its newest case with the real
// psql (the password from the environment, never on the command line).
func psql(ctx context.Context, s *testsuite.PGServer) error {
	args := []string{"-h", "127.0.0.1", "-p", fmt.Sprint(s.Port), "-U", "postgres", "-d", "cases", "-c",
		"SELECT pg_is_in_recovery() AS standby, count(*) AS cases, max(opened_at) AS newest_case FROM cases"}
	fmt.Printf("$ psql %s   # %s\n", strings.Join(args[:len(args)-1], " ")+` "`+args[len(args)-1]+`"`, s.Name)
	cmd := exec.CommandContext(ctx, filepath.Join(testsuite.PostgresBin, "psql"), args...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+testsuite.PlantedPGPassword)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// workerConfig points the demo worker at the rig; the Cloudflare token comes
// from the environment, never from the file.
const workerConfig = `# Written by make demo: the worker's (and the CLI's) view of the local rig.
catalog: [%s]
baseDir: %s
kube:
  kubeconfig: %s
terraform:
  binary: %s
cloudflare:
  tokenEnv: LIFEBOAT_DEMO_CF_TOKEN
  baseURL: %s
`

// writeCatalog fills the demo catalog: the examples, with example (a)'s
// business-journey URL pointed at the rig, and the local-service drill.
func writeCatalog(dir string, stack *testsuite.Stack, svcURL, hookURL string) error {
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files, err := filepath.Glob("runbooks/examples/*.yaml")
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if filepath.Base(f) == "region-ca-central-1-loss.yaml" {
			// The rig has no shop cluster: the local service stands in for it.
			b = []byte(strings.ReplaceAll(string(b), "runbook: warm-standby-failover", "runbook: local-service-drill"))
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), stack.Runbook(b), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "local-service-drill.yaml"), []byte(fmt.Sprintf(demokit.LocalDrill, svcURL, hookURL)), 0o644)
}
