package kube

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// DryRuns are the kube.* actions that change something, run without
// changing it: kube.apply as server-side apply with DryRun=All (what each
// object would become), kube.scale and kube.deleteNamespace from what is
// there now.
func (a *Actions) DryRuns() map[string]func(context.Context, runbooks.StepInput) ([]runbooks.Change, error) {
	return map[string]func(context.Context, runbooks.StepInput) ([]runbooks.Change, error){
		"kube.apply":           a.applyDryRun,
		"kube.scale":           a.scaleDryRun,
		"kube.deleteNamespace": a.deleteDryRun,
	}
}

func (a *Actions) applyDryRun(ctx context.Context, in runbooks.StepInput) ([]runbooks.Change, error) {
	var args ApplyArgs
	if err := in.DecodeArgs(&args); err != nil {
		return nil, err
	}
	objs, err := a.readManifests(args.Path)
	if err != nil {
		return nil, err
	}
	c, err := a.clientFor(in, args.Target)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(objs, func(i, j int) bool { return order(objs[i]) < order(objs[j]) })
	creating := map[string]bool{} // namespaces this apply (or the drill guard) creates
	var out []runbooks.Change
	for _, obj := range objs {
		remap(obj, in.NamespaceMappings)
		if obj.GetKind() == "Namespace" {
			if _, err := c.Typed.CoreV1().Namespaces().Get(ctx, obj.GetName(), metav1.GetOptions{}); apierrors.IsNotFound(err) {
				creating[obj.GetName()] = true
			}
		}
		ns := cmpOr(obj.GetNamespace(), args.Namespace)
		if _, known := creating[ns]; !known && ns != "" {
			creating[ns] = madeByTheDrill(ctx, c, in, ns)
		}
		if creating[ns] {
			out = append(out, runbooks.Change{What: strings.ToLower(obj.GetKind()) + " " + ns + "/" + obj.GetName(), After: "created",
				Note: "in a namespace this step creates: the API server cannot dry-run it before the namespace exists"})
			continue
		}
		ref, got, err := a.apply(ctx, c, obj, args.Namespace, true)
		if err != nil {
			return nil, err
		}
		ch := runbooks.Change{What: strings.ReplaceAll(ref, "/", " ")}
		if got.before == nil {
			ch.After = "created"
		} else if diff := changedFields(got.before.Object, got.after.Object); len(diff) > 0 {
			ch.Before, ch.After = "exists", "changes "+strings.Join(diff, ", ")
		} else {
			ch.Before, ch.After = "exists", "unchanged"
		}
		out = append(out, ch)
	}
	return out, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// changedFields lists the fields (two levels deep, metadata's bookkeeping
// and status left out) that differ between before and after.
func changedFields(before, after map[string]any) []string {
	skip := map[string]bool{"status": true, "metadata.managedFields": true, "metadata.resourceVersion": true,
		"metadata.generation": true, "metadata.uid": true, "metadata.creationTimestamp": true}
	var out []string
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	for k := range keys {
		if skip[k] {
			continue
		}
		b, _ := before[k].(map[string]any)
		a, _ := after[k].(map[string]any)
		if b == nil || a == nil {
			if !reflect.DeepEqual(before[k], after[k]) {
				out = append(out, k)
			}
			continue
		}
		sub := map[string]bool{}
		for s := range b {
			sub[s] = true
		}
		for s := range a {
			sub[s] = true
		}
		for s := range sub {
			if p := k + "." + s; !skip[p] && !reflect.DeepEqual(b[s], a[s]) {
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (a *Actions) scaleDryRun(ctx context.Context, in runbooks.StepInput) ([]runbooks.Change, error) {
	var args ScaleArgs
	if err := in.DecodeArgs(&args); err != nil {
		return nil, err
	}
	c, err := a.clientFor(in, args.Target)
	if err != nil {
		return nil, err
	}
	var out []runbooks.Change
	made := madeByTheDrill(ctx, c, in, args.Namespace)
	for _, name := range sortedKeys(args.Replicas) {
		ch := runbooks.Change{What: fmt.Sprintf("%s/%s replicas", args.Namespace, name), After: fmt.Sprint(args.Replicas[name])}
		if made {
			ch.Note = "not there yet: the drill makes namespace " + args.Namespace + ", and an earlier step (a restore, a sync) creates it"
			out = append(out, ch)
			continue
		}
		kind, now, err := readScale(ctx, c, args.Namespace, name)
		switch {
		case apierrors.IsNotFound(err):
			ch.Note = "not there yet: an earlier step (a restore, a sync) creates it"
		case err != nil:
			return nil, notFoundOr(err, args.Namespace, name)
		default:
			ch.What = fmt.Sprintf("%s %s/%s replicas", strings.ToLower(kind), args.Namespace, name)
			ch.Before = fmt.Sprint(now)
		}
		out = append(out, ch)
	}
	return out, nil
}

// madeByTheDrill reports whether ns is one of a drill's namespaces that
// does not exist yet: the drill guard makes it (and binds the drill's role
// in it) when a changing step first reaches it, so nothing in it can be
// read before — the worker's permissions there come with the namespace.
func madeByTheDrill(ctx context.Context, c *Client, in runbooks.StepInput, ns string) bool {
	if !in.Drill() || !slices.Contains(DrillDestinations(in), ns) {
		return false
	}
	_, err := c.Typed.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	return apierrors.IsNotFound(err)
}

func (a *Actions) deleteDryRun(ctx context.Context, in runbooks.StepInput) ([]runbooks.Change, error) {
	var args NamespaceArgs
	if err := in.DecodeArgs(&args); err != nil {
		return nil, err
	}
	c, err := a.clientFor(in, args.Target)
	if err != nil {
		return nil, err
	}
	ch := runbooks.Change{What: "namespace " + args.Namespace, Before: "exists"}
	if _, err := c.Typed.CoreV1().Namespaces().Get(ctx, args.Namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		ch.Before, ch.Note = "", "not there now: the run creates it before this step deletes it"
	}
	return []runbooks.Change{ch}, nil
}
