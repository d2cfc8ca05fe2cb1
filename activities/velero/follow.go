package velero

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// getOrCreate returns the step's object: the one an earlier attempt created,
// or want, created now.
func getOrCreate(ctx context.Context, res dynamic.ResourceInterface, want *unstructured.Unstructured) (*unstructured.Unstructured, bool, error) {
	got, err := res.Get(ctx, want.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		got, err = res.Create(ctx, want, metav1.CreateOptions{})
		return got, true, err
	}
	return got, false, err
}

// progress is where a Velero Backup or Restore stands.
type progress struct {
	phase       string
	done, total int64
}

func (p progress) String() string {
	return fmt.Sprintf("%s (%d/%d items)", orNew(p.phase), p.done, p.total)
}

// follow waits, by watching it, on a Velero Backup or Restore (kind names it
// in messages): judge sees the object now and after every change, and ends
// the wait with a result or an error; in between the activity heartbeats its
// progress (items counted in status.progress.doneField). When the step's time
// runs out the object goes on in the cluster and a retry waits on it; when
// the run is aborted, aborted says what was left.
func (a *Actions) follow(ctx context.Context, c *kube.Client, gvr schema.GroupVersionResource, obj *unstructured.Unstructured, kind, doneField string,
	judge func(*unstructured.Unstructured, progress) (*runbooks.StepResult, error), aborted func(progress) error) (runbooks.StepResult, error) {
	ctx, cancel := kube.BeforeDeadline(ctx)
	defer cancel()
	start := time.Now()
	name := obj.GetName()
	var p progress
	var result *runbooks.StepResult
	err := kube.WaitFor(ctx, c, []kube.Watched{{GVR: gvr, Namespace: obj.GetNamespace(), Name: name}}, func(objs [][]*unstructured.Unstructured) (bool, error) {
		if len(objs[0]) > 0 {
			obj = objs[0][0]
		}
		p = progress{}
		p.phase, _, _ = unstructured.NestedString(obj.Object, "status", "phase")
		p.done, _, _ = unstructured.NestedInt64(obj.Object, "status", "progress", doneField)
		p.total, _, _ = unstructured.NestedInt64(obj.Object, "status", "progress", "totalItems")
		var err error
		result, err = judge(obj, p)
		return result != nil || err != nil, err
	}, func() { kube.Heartbeat(ctx, fmt.Sprintf("%s %s %s", kind, name, p)) })
	switch {
	case err == nil && result != nil:
		return *result, nil
	case ctx.Err() == nil:
		if result != nil {
			return *result, err
		}
		return runbooks.StepResult{}, err
	case errors.Is(ctx.Err(), context.Canceled):
		return runbooks.StepResult{}, aborted(p)
	}
	return runbooks.StepResult{}, fmt.Errorf("velero %s %s still %s after %s; it goes on in the cluster and a retry waits on the same %s",
		kind, name, p, time.Since(start).Round(time.Second), strings.ToUpper(kind[:1])+kind[1:])
}
