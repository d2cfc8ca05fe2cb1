package kube

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// Waits watch, they do not poll: every wait on cluster state (workloads
// ready, a namespace gone, claims bound, CRDs established, a Secret the
// secrets operator writes, a Velero Restore's phase, an Argo CD
// Application's health) runs informers — a list, then a watch, re-listed
// when the watch breaks — and judges the cached objects again on every
// change, so a step returns milliseconds after the API server saw the state
// it waits for. Resync re-judges them although nothing changed: the safety
// net under the watch. The wait heartbeats every HeartbeatEvery.

// Resync is how often a wait re-reads its objects with no change seen.
const Resync = 30 * time.Second

// HeartbeatEvery is how often a waiting activity heartbeats (the SDK sends
// at most one heartbeat per 80% of the heartbeat timeout).
const HeartbeatEvery = time.Second

// Watched is one kind of object a wait watches: a resource in a namespace
// ("" for cluster-scoped or every namespace), optionally one object by name.
type Watched struct {
	GVR       schema.GroupVersionResource
	Namespace string
	Name      string
}

// Judge looks at the watched objects (one slice per Watched, in order) and
// says whether the wait is over (done) or failed (err).
type Judge func(objs [][]*unstructured.Unstructured) (done bool, err error)

// WatchError is a watch the API server refused (RBAC, a resource it does not
// serve): the wait cannot see what it waits for.
type WatchError struct {
	Watched Watched
	Err     error
}

func (e *WatchError) Error() string {
	what := e.Watched.GVR.Resource
	if e.Watched.Name != "" {
		what += " " + e.Watched.Name
	}
	if e.Watched.Namespace != "" {
		what += " in " + e.Watched.Namespace
	}
	return fmt.Sprintf("cannot watch %s: %v (the worker's identity needs list and watch on %s)", what, e.Err, e.Watched.GVR.Resource)
}

func (e *WatchError) Unwrap() error { return e.Err }

// WaitFor judges the watched objects once the informers have listed them,
// then again on every change and every Resync, until judge says done or
// fails, or ctx ends (then it returns ctx.Err()). beat is called every
// HeartbeatEvery while it waits.
func WaitFor(ctx context.Context, c *Client, what []Watched, judge Judge, beat func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	var mu sync.Mutex
	var watchErr error
	informers := make([]cache.SharedIndexInformer, len(what))
	for i, w := range what {
		inf := informerFor(c, w)
		_ = inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
			mu.Lock()
			watchErr = &WatchError{Watched: w, Err: err}
			mu.Unlock()
			notify()
		})
		if _, err := inf.AddEventHandlerWithResyncPeriod(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { notify() },
			UpdateFunc: func(any, any) { notify() },
			DeleteFunc: func(any) { notify() },
		}, Resync); err != nil {
			return err
		}
		informers[i] = inf
		go inf.Run(ctx.Done())
	}
	tick := time.NewTicker(HeartbeatEvery)
	defer tick.Stop()
	for {
		if synced(informers) {
			done, err := judge(cached(informers))
			if done || err != nil {
				return err
			}
		} else {
			mu.Lock()
			err := watchErr
			mu.Unlock()
			if err != nil && forbiddenOrMissing(err) {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-tick.C:
			beat()
		}
	}
}

// informerFor lists and watches what w names (one object when w.Name is
// set). It is what dynamicinformer builds, without importing that package:
// its GenericInformer type pulls every typed informer and lister of
// client-go into the binary (~40 s of a cold build on 2 cores).
func informerFor(c *Client, w Watched) cache.SharedIndexInformer {
	res := c.Dynamic.Resource(w.GVR).Namespace(w.Namespace)
	narrow := func(o metav1.ListOptions) metav1.ListOptions {
		if w.Name != "" {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", w.Name).String()
		}
		return o
	}
	return cache.NewSharedIndexInformerWithOptions(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return res.List(ctx, narrow(o))
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return res.Watch(ctx, narrow(o))
		},
	}, &unstructured.Unstructured{}, cache.SharedIndexInformerOptions{ResyncPeriod: Resync, ObjectDescription: w.GVR.String()})
}

func synced(informers []cache.SharedIndexInformer) bool {
	for _, inf := range informers {
		if !inf.HasSynced() {
			return false
		}
	}
	return true
}

func cached(informers []cache.SharedIndexInformer) [][]*unstructured.Unstructured {
	out := make([][]*unstructured.Unstructured, len(informers))
	for i, inf := range informers {
		for _, o := range inf.GetStore().List() {
			if u, ok := o.(*unstructured.Unstructured); ok {
				out[i] = append(out[i], u)
			}
		}
	}
	return out
}

// forbiddenOrMissing is a watch error no retry mends: the informer would
// retry forever while the step waits for nothing.
func forbiddenOrMissing(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err)
}

// As converts a watched object to its typed form (a Deployment, a PVC, …).
func As[T any](u *unstructured.Unstructured) (*T, error) {
	var t T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &t); err != nil {
		return nil, err
	}
	return &t, nil
}
