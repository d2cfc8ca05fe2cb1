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

// follow waits on a Velero Backup or Restore (kind names it in messages):
// judge sees the object now and after every poll, and ends the wait with a
// result or an error; in between the activity heartbeats its progress (items
// counted in status.progress.doneField). When the step's time runs out the
// object goes on in the cluster and a retry waits on it; when the run is
// aborted, aborted says what was left.
func (a *Actions) follow(ctx context.Context, res dynamic.ResourceInterface, obj *unstructured.Unstructured, kind, doneField string,
	judge func(*unstructured.Unstructured, progress) (*runbooks.StepResult, error), aborted func(progress) error) (runbooks.StepResult, error) {
	ctx, cancel := kube.BeforeDeadline(ctx)
	defer cancel()
	start := time.Now()
	name := obj.GetName()
	for {
		var p progress
		p.phase, _, _ = unstructured.NestedString(obj.Object, "status", "phase")
		p.done, _, _ = unstructured.NestedInt64(obj.Object, "status", "progress", doneField)
		p.total, _, _ = unstructured.NestedInt64(obj.Object, "status", "progress", "totalItems")
		if res, err := judge(obj, p); res != nil || err != nil {
			if res == nil {
				return runbooks.StepResult{}, err
			}
			return *res, err
		}
		kube.Heartbeat(ctx, fmt.Sprintf("%s %s %s", kind, name, p))
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return runbooks.StepResult{}, aborted(p)
			}
			return runbooks.StepResult{}, fmt.Errorf("velero %s %s still %s after %s; it goes on in the cluster and a retry waits on the same %s",
				kind, name, p, time.Since(start).Round(time.Second), strings.ToUpper(kind[:1])+kind[1:])
		case <-time.After(a.poll()):
		}
		next, err := res.Get(ctx, name, metav1.GetOptions{})
		if err != nil && ctx.Err() == nil {
			return runbooks.StepResult{}, fmt.Errorf("velero.%s: reading %s: %w", kind, name, err)
		}
		if err == nil {
			obj = next
		}
	}
}
