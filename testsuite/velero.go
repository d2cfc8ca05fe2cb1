package testsuite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/lifeboat-dr/lifeboat/devserver/gobuild"
)

// Versions of the rig's backup stack: Velero, its AWS object-store plugin
// (the release that pairs with Velero 1.18) and the S3 server it writes to.
const (
	VeleroVersion          = "v1.18.3"
	VeleroAWSPluginVersion = "v1.14.3"
	VersityGWVersion       = "v1.8.0"
)

// Rig S3 credentials: fixed, a loopback store holding nothing but the rig's
// backups.
const (
	s3Access = "lifeboat-rig"
	s3Secret = "lifeboat-rig-s3-secret"
	s3Bucket = "velero"
	// FailbackBucket is a second bucket of the rig's store: where the DR
	// cluster writes the backups a failback restores into the primary
	// (Velero refuses a location at a bucket's root that shares the bucket
	// with a prefixed one: "invalid top-level directories").
	FailbackBucket = "velero-dr"
)

// VeleroBinaries are the paths of the backup stack's binaries.
type VeleroBinaries struct {
	Velero, AWSPlugin, S3 string
}

// EnsureVelero returns the cached Velero, AWS plugin and S3 server binaries,
// building each that is missing (Velero and its plugin with the control
// plane and Argo CD: ensureK8sRig).
func EnsureVelero(ctx context.Context, progress io.Writer) (VeleroBinaries, error) {
	k, err := ensureK8sRig(ctx, progress)
	if err != nil {
		return VeleroBinaries{}, err
	}
	b := VeleroBinaries{Velero: k.Velero, AWSPlugin: k.AWSPlugin}
	b.S3, err = ensureVersityGW(ctx, progress)
	return b, err
}

// ensureVersityGW returns the cached S3 server, building it first if needed.
func ensureVersityGW(ctx context.Context, progress io.Writer) (string, error) {
	return gobuild.GoInstall(ctx, "versitygw", "github.com/versity/versitygw/cmd/versitygw", VersityGWVersion, progress)
}

// Velero resources the rig and its tests read.
var (
	RestoreGVR        = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "restores"}
	veleroBackupGVR   = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "backups"}
	veleroScheduleGVR = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "schedules"}
	veleroBSLGVR      = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "backupstoragelocations"}
)

// Velero is the real Velero server running as a local process against a rig
// cluster, writing to a real S3 server (versitygw, posix backend) on loopback.
// There is no kubelet on the rig: Velero backs up and restores Kubernetes
// resources; there is no file-system backup and no volume snapshot.
type Velero struct {
	// Namespace is Velero's namespace on the cluster ("velero").
	Namespace string
	// S3URL is the object store's endpoint.
	S3URL string
	// Binaries are the Velero CLI/server, plugin and S3 server.
	Binaries VeleroBinaries

	kube     *Kube
	dyn      dynamic.Interface
	dir      string
	store    *ObjectStore // stopped with Velero when Velero started it
	ownStore bool
	readOnly bool
	flags    []string // server flags every start gets (VeleroOptions.SyncPeriod)
	server   *proc
}

// VeleroOptions configure a rig Velero.
type VeleroOptions struct {
	// Dir holds the server's logs and temporary files (and the store's
	// bucket when Store is nil).
	Dir string
	// Store is the object store to write to; nil starts one of its own. Two
	// clusters sharing one store is a primary and its DR cluster reading the
	// same bucket.
	Store *ObjectStore
	// ReadOnly makes the default location ReadOnly: a DR cluster restores
	// from the primary's backups and never writes or prunes them.
	ReadOnly bool
	// SyncPeriod is how often the server syncs backups from its locations
	// into the cluster (--backup-sync-period; Velero's default is 1 minute).
	SyncPeriod time.Duration
	// Progress receives build and start lines (nil: none).
	Progress io.Writer
}

// ObjectStore is the rig's S3 server (versitygw, posix backend) with two
// buckets: velero and FailbackBucket.
type ObjectStore struct {
	// URL is its endpoint.
	URL  string
	proc *proc
}

// StartObjectStore starts an S3 server whose bucket lives in dir.
func StartObjectStore(ctx context.Context, dir string, bins VeleroBinaries) (*ObjectStore, error) {
	for _, b := range []string{s3Bucket, FailbackBucket} {
		if err := os.MkdirAll(filepath.Join(dir, "s3", b), 0o755); err != nil {
			return nil, err
		}
	}
	return startVersity(ctx, dir, bins.S3)
}

// startVersity runs versitygw on a free port over dir/s3 (posix backend;
// extra are the backend's flags).
func startVersity(ctx context.Context, dir, bin string, extra ...string) (*ObjectStore, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	args := append([]string{"--port", addr, "--quiet", "posix"}, extra...)
	p, err := startProcEnv("versitygw", bin, filepath.Join(dir, "s3.log"),
		[]string{"ROOT_ACCESS_KEY=" + s3Access, "ROOT_SECRET_KEY=" + s3Secret},
		append(args, filepath.Join(dir, "s3"))...)
	if err != nil {
		return nil, err
	}
	if err := waitListening(ctx, p, addr, time.Minute); err != nil {
		p.stop()
		return nil, err
	}
	return &ObjectStore{URL: "http://" + addr, proc: p}, nil
}

// Stop stops the S3 server.
func (o *ObjectStore) Stop() {
	if o != nil {
		o.proc.stop()
	}
}

// StartVelero starts Velero on a cluster with an object store of its own.
func StartVelero(ctx context.Context, k *Kube, dir string, progress io.Writer) (*Velero, error) {
	return StartVeleroWith(ctx, k, VeleroOptions{Dir: dir, Progress: progress})
}

// StartVeleroWith installs Velero's CRDs, namespace, credentials and default
// BackupStorageLocation on the cluster, starts the Velero server and waits
// until the location is Available.
func StartVeleroWith(ctx context.Context, k *Kube, o VeleroOptions) (v *Velero, err error) {
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	bins, err := EnsureVelero(ctx, progress)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	v = &Velero{Namespace: "velero", Binaries: bins, kube: k, dir: o.Dir, store: o.Store, readOnly: o.ReadOnly}
	if o.SyncPeriod > 0 {
		v.flags = []string{"--backup-sync-period", o.SyncPeriod.String()}
	}
	stopOnError := v
	defer func() {
		if err != nil {
			stopOnError.Stop()
		}
	}()
	if v.dyn, err = dynamic.NewForConfig(k.RESTConfig()); err != nil {
		return nil, err
	}
	if v.store == nil {
		if v.store, err = StartObjectStore(ctx, o.Dir, bins); err != nil {
			return nil, err
		}
		v.ownStore = true
	}
	v.S3URL = v.store.URL
	crds, err := exec.CommandContext(ctx, bins.Velero, "install", "--crds-only", "--dry-run", "-o", "yaml").Output()
	if err != nil {
		return nil, fmt.Errorf("velero install --crds-only --dry-run: %w", err)
	}
	if err := ApplyCRDs(ctx, k.RESTConfig(), "velero install --crds-only", crds); err != nil {
		return nil, err
	}
	if err := v.install(ctx); err != nil {
		return nil, err
	}
	if err := v.startServer(); err != nil {
		return nil, err
	}
	if err := v.waitAvailable(ctx, "default", 2*time.Minute); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "rig: Velero %s is up on %s, its backup storage location Available on %s (%s)\n", VeleroVersion, k.Context, v.S3URL, time.Since(started).Round(100*time.Millisecond))
	return v, nil
}

// install writes what `velero install` would, minus the server Deployment's
// pods: the namespace, the credentials Secret, a Deployment named velero with
// no replicas (Velero's restore actions read the server image from it; the
// server itself runs here as a local process) and the default location.
func (v *Velero) install(ctx context.Context) error {
	c, err := kubernetes.NewForConfig(v.kube.RESTConfig())
	if err != nil {
		return err
	}
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v.Namespace}}, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	creds := fmt.Sprintf("[default]\naws_access_key_id=%s\naws_secret_access_key=%s\n", s3Access, s3Secret)
	if _, err := c.CoreV1().Secrets(v.Namespace).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cloud-credentials"},
		StringData: map[string]string{"cloud": creds}}, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	deploy := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "velero", "namespace": v.Namespace, "annotations": map[string]any{"lifeboat.dev/rig": "the Velero server runs as a local process"}},
		"spec": map[string]any{"replicas": int64(0), "selector": map[string]any{"matchLabels": map[string]any{"deploy": "velero"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"deploy": "velero"}},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "velero", "image": "velero/velero:" + VeleroVersion}}}}}}}
	if _, err := v.dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace(v.Namespace).
		Create(ctx, deploy, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	return v.AddLocation(ctx, "default", true)
}

// AddLocation creates a BackupStorageLocation on the rig's bucket (ReadOnly
// when the Velero was started ReadOnly).
func (v *Velero) AddLocation(ctx context.Context, name string, isDefault bool) error {
	return v.AddBucketLocation(ctx, name, s3Bucket, v.readOnly, isDefault)
}

// AddBucketLocation creates a BackupStorageLocation on a bucket of the
// rig's store, ReadOnly or ReadWrite.
func (v *Velero) AddBucketLocation(ctx context.Context, name, bucket string, readOnly, isDefault bool) error {
	mode := "ReadWrite"
	if readOnly {
		mode = "ReadOnly"
	}
	bsl := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
		"metadata": map[string]any{"name": name, "namespace": v.Namespace},
		"spec": map[string]any{"provider": "aws", "default": isDefault, "accessMode": mode,
			"objectStorage": map[string]any{"bucket": bucket},
			"credential":    map[string]any{"name": "cloud-credentials", "key": "cloud"},
			"config":        map[string]any{"region": "us-east-1", "s3ForcePathStyle": "true", "s3Url": v.S3URL, "checksumAlgorithm": ""}}}}
	_, err := v.dyn.Resource(veleroBSLGVR).Namespace(v.Namespace).Create(ctx, bsl, metav1.CreateOptions{})
	return ignoreExists(err)
}

// DeleteLocation deletes a BackupStorageLocation (as an operator who cleans
// up the wrong one would).
func (v *Velero) DeleteLocation(ctx context.Context, name string) error {
	return v.dyn.Resource(veleroBSLGVR).Namespace(v.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
}

func (v *Velero) waitAvailable(ctx context.Context, location string, timeout time.Duration) error {
	var phase, msg string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err, dead := v.server.exited(); dead {
			return false, fmt.Errorf("the Velero server exited (%v); its log ends:\n%s", err, v.server.lastLog())
		}
		u, err := v.dyn.Resource(veleroBSLGVR).Namespace(v.Namespace).Get(ctx, location, metav1.GetOptions{})
		if err != nil {
			return false, nil // not there yet
		}
		phase, _, _ = unstructured.NestedString(u.Object, "status", "phase")
		msg, _, _ = unstructured.NestedString(u.Object, "status", "message")
		return phase == "Available", nil
	})
	if wait.Interrupted(err) {
		return fmt.Errorf("Velero's backup storage location %s is %q after %s (%s); the server log ends:\n%s", location, phase, timeout, msg, v.server.lastLog())
	}
	return err
}

// WaitSynced waits until the default location has synced the bucket into
// the cluster after a time (up to two of Velero's one-minute sync rounds).
func (v *Velero) WaitSynced(ctx context.Context, after time.Time) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 150*time.Second, true, func(ctx context.Context) (bool, error) {
		u, err := v.dyn.Resource(veleroBSLGVR).Namespace(v.Namespace).Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last, _, _ = unstructured.NestedString(u.Object, "status", "lastSyncedTime")
		at, err := time.Parse(time.RFC3339, last)
		return err == nil && !at.Before(after), nil
	})
	if wait.Interrupted(err) {
		return fmt.Errorf("Velero on %s did not sync its location after %s within 150s (last synced %q); the server log ends:\n%s", v.kube.Context, after.Format(time.RFC3339), last, v.server.lastLog())
	}
	return err
}

// startServer runs `velero server` by absolute path (its built-in plugins
// re-exec os.Args[0]), validating locations every 5s, with extra flags.
func (v *Velero) startServer(extra ...string) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	// Velero runs every file of its plugin directory as a plugin, and the
	// AWS plugin is cached beside the rig's other binaries: its own
	// directory holds a link to it alone.
	plugins := filepath.Join(v.dir, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		return err
	}
	if err := os.Symlink(v.Binaries.AWSPlugin, filepath.Join(plugins, filepath.Base(v.Binaries.AWSPlugin))); err != nil && !os.IsExist(err) {
		return err
	}
	extra = append(append([]string(nil), v.flags...), extra...)
	args := append([]string{"server", "--kubeconfig", v.kube.Kubeconfig, "--namespace", v.Namespace, "--plugin-dir", plugins,
		"--metrics-address", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--profiler-address", "", "--store-validation-frequency", "5s", "--log-level", "info"}, extra...)
	log := filepath.Join(v.dir, "velero-server"+strings.Join(extra[len(v.flags):], "")+".log")
	// Velero writes a location's credential to $TMPDIR/credentials,
	// truncating the file each time it hands the path to the AWS plugin (at
	// every location validation and backup/restore); a plugin reading it
	// mid-rewrite finds no key and falls back to EC2 IMDS (seen in CI: "no
	// EC2 IMDS role found … 403"). So each rig's server gets a TMPDIR of its
	// own, and the same fixed rig keys in the environment, which the AWS
	// credential chain reads before any file.
	tmp := filepath.Join(v.dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	p, err := startProcEnv("velero", v.Binaries.Velero, log,
		[]string{"TMPDIR=" + tmp, "AWS_ACCESS_KEY_ID=" + s3Access, "AWS_SECRET_ACCESS_KEY=" + s3Secret}, args...)
	if err != nil {
		return err
	}
	v.server = p
	return nil
}

// Schedule creates a Velero Schedule of namespaces that runs every hour
// (its first run an hour after it was created, so never during a test);
// BackupFromSchedule takes its backups on demand.
func (v *Velero) Schedule(ctx context.Context, name string, namespaces ...string) error {
	ns := make([]any, len(namespaces))
	for i, n := range namespaces {
		ns[i] = n
	}
	s := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "velero.io/v1", "kind": "Schedule",
		"metadata": map[string]any{"name": name, "namespace": v.Namespace},
		"spec":     map[string]any{"schedule": "@every 1h", "template": map[string]any{"includedNamespaces": ns, "ttl": "720h0m0s"}}}}
	if _, err := v.dyn.Resource(veleroScheduleGVR).Namespace(v.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Velero schedule %s: %w", name, err)
	}
	return nil
}

// BackupFromSchedule takes a backup now with the schedule's template, as
// `velero backup create --from-schedule` does, and waits for it.
func (v *Velero) BackupFromSchedule(ctx context.Context, schedule string) (string, time.Time, error) {
	s, err := v.dyn.Resource(veleroScheduleGVR).Namespace(v.Namespace).Get(ctx, schedule, metav1.GetOptions{})
	if err != nil {
		return "", time.Time{}, err
	}
	spec, _, _ := unstructured.NestedMap(s.Object, "spec", "template")
	name := fmt.Sprintf("%s-%s", schedule, time.Now().UTC().Format("20060102150405"))
	b := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "velero.io/v1", "kind": "Backup",
		"metadata": map[string]any{"name": name, "namespace": v.Namespace, "labels": map[string]any{"velero.io/schedule-name": schedule}},
		"spec":     spec}}
	if _, err := v.dyn.Resource(veleroBackupGVR).Namespace(v.Namespace).Create(ctx, b, metav1.CreateOptions{}); err != nil {
		return "", time.Time{}, err
	}
	at, err := v.waitBackup(ctx, name)
	return name, at, err
}

// waitBackup waits until a backup is Completed and returns its start time:
// its recovery point (the data is at least as old as the backup's start).
func (v *Velero) waitBackup(ctx context.Context, name string) (time.Time, error) {
	var phase, completed string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		b, err := v.dyn.Resource(veleroBackupGVR).Namespace(v.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil // not there yet
		}
		phase, _, _ = unstructured.NestedString(b.Object, "status", "phase")
		completed, _, _ = unstructured.NestedString(b.Object, "status", "startTimestamp")
		switch phase {
		case "Failed", "PartiallyFailed", "FailedValidation":
			return false, fmt.Errorf("Velero backup %s %s: %v", name, phase, b.Object["status"])
		}
		return phase == "Completed", nil
	})
	if wait.Interrupted(err) {
		return time.Time{}, fmt.Errorf("Velero backup %s still %q after 2 minutes; the server log ends:\n%s", name, phase, v.server.lastLog())
	}
	if err != nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339, completed)
}

// PauseSchedule pauses (or resumes) a schedule, as `velero schedule pause` does.
func (v *Velero) PauseSchedule(ctx context.Context, name string, paused bool) error {
	patch := fmt.Appendf(nil, `{"spec":{"paused":%v}}`, paused)
	_, err := v.dyn.Resource(veleroScheduleGVR).Namespace(v.Namespace).Patch(ctx, name, "application/merge-patch+json", patch, metav1.PatchOptions{})
	return err
}

// CLI runs the velero CLI against the rig (e.g. "restore", "describe", NAME).
func (v *Velero) CLI(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, v.Binaries.Velero, append(args, "--kubeconfig", v.kube.Kubeconfig, "--namespace", v.Namespace, "--colorized=false")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// StopServer stops the Velero server (Velero's objects stay; nothing
// processes them until Restart), as when its pod is rescheduled.
func (v *Velero) StopServer() { v.server.stop() }

// Restart stops the Velero server and starts it again with extra flags (e.g.
// "--client-qps", "2" makes it as slow as a throttled production Velero),
// then waits until the default location is Available again.
func (v *Velero) Restart(ctx context.Context, extra ...string) error {
	v.server.stop()
	if err := v.startServer(extra...); err != nil {
		return err
	}
	return v.waitAvailable(ctx, "default", time.Minute)
}

// Kill ends the Velero server with SIGKILL (a lost region); the objects it
// wrote to the bucket stay.
func (v *Velero) Kill() { v.server.kill() }

// Stop stops the Velero server, and the S3 store if it is Velero's own.
func (v *Velero) Stop() {
	v.server.stop()
	if v.ownStore {
		v.store.Stop()
	}
}
