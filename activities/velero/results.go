package velero

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/activities/secrets"
)

var downloadRequestGVR = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "downloadrequests"}

// result is one half (errors or warnings) of the results file Velero writes
// for a restore (pkg/util/results.Result).
type result struct {
	Velero     []string            `json:"velero,omitempty"`
	Cluster    []string            `json:"cluster,omitempty"`
	Namespaces map[string][]string `json:"namespaces,omitempty"`
}

// lines are the result's messages, Velero's own first, then cluster-scoped,
// then per namespace in name order.
func (r result) lines() []string {
	out := append(append([]string(nil), r.Velero...), r.Cluster...)
	var nss []string
	for ns := range r.Namespaces {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	for _, ns := range nss {
		out = append(out, r.Namespaces[ns]...)
	}
	return out
}

// restoreErrors reads the errors Velero recorded for a restore — the
// resources it failed to restore and why — the way `velero restore describe
// --details` does: a DownloadRequest for the RestoreResults, then the file at
// the URL Velero signs. When that fails (object storage unreachable from the
// worker) it says so instead, with the command to run.
func restoreErrors(ctx context.Context, c *kube.Client, vns, restore string) []string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	lines, err := downloadResults(ctx, c, vns, restore)
	if err != nil {
		return []string{fmt.Sprintf("Velero's per-resource results could not be read (%v): run `velero restore describe %s --details`", err, restore)}
	}
	return lines
}

func downloadResults(ctx context.Context, c *kube.Client, vns, restore string) ([]string, error) {
	var results map[string]result
	if err := download(ctx, c, vns, "RestoreResults", restore, &results); err != nil {
		return nil, err
	}
	return results["errors"].lines(), nil
}

// download reads a file Velero keeps in object storage for a backup or a
// restore (kind: RestoreResults, BackupResourceList…) into v, as the velero
// CLI does: a DownloadRequest (labelled managed-by lifeboat, deleted after),
// then the gzipped JSON at the URL Velero signs.
func download(ctx context.Context, c *kube.Client, vns, kind, name string, v any) error {
	reqs := c.Dynamic.Resource(downloadRequestGVR).Namespace(vns)
	req := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "velero.io/v1", "kind": "DownloadRequest",
		"metadata": map[string]any{"generateName": name + "-" + strings.ToLower(kind) + "-", "namespace": vns, "labels": map[string]any{"app.kubernetes.io/managed-by": "lifeboat"}},
		"spec":     map[string]any{"target": map[string]any{"kind": kind, "name": name}}}}
	created, err := reqs.Create(ctx, req, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	defer func() { _ = reqs.Delete(context.WithoutCancel(ctx), created.GetName(), metav1.DeleteOptions{}) }()
	var url string
	for url == "" {
		select {
		case <-ctx.Done():
			return fmt.Errorf("Velero gave no download URL: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		got, err := reqs.Get(ctx, created.GetName(), metav1.GetOptions{})
		if err != nil {
			return err
		}
		url, _, _ = unstructured.NestedString(got.Object, "status", "downloadURL")
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(httpReq)
	if err != nil {
		// the URL carries Velero's signature: keep only its scheme and host
		return fmt.Errorf("downloading %s: %s", kind, secrets.RedactURLs(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading %s: object storage answered %s", kind, resp.Status)
	}
	gz, err := gzip.NewReader(resp.Body)
	if err != nil {
		return err
	}
	if err := json.NewDecoder(gz).Decode(v); err != nil {
		return fmt.Errorf("decoding %s: %w", kind, err)
	}
	return nil
}
