package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// FieldManager is the server-side-apply field manager of every lifeboat write.
const FieldManager = "lifeboat"

// ApplyArgs are kube.apply's arguments.
type ApplyArgs struct {
	Target    string `json:"target"`
	Path      string `json:"path"`
	Namespace string `json:"namespace"`
}

// kindOrder applies what others depend on first, as kubectl does.
var kindOrder = map[string]int{"Namespace": 0, "CustomResourceDefinition": 1, "ServiceAccount": 2, "ClusterRole": 3, "Role": 3,
	"ClusterRoleBinding": 4, "RoleBinding": 4, "Secret": 5, "ConfigMap": 5}

// Apply server-side-applies a file or directory of manifests (YAML or JSON,
// several documents per file) with field manager lifeboat. Re-applying is
// idempotent. In a drill, namespaces are rewritten through the drill's
// namespace mappings (object namespaces, Namespace names, binding subjects).
func (a *Actions) Apply(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args ApplyArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	objs, err := a.readManifests(args.Path)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	c, err := a.clientFor(in, args.Target)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	sort.SliceStable(objs, func(i, j int) bool { return order(objs[i]) < order(objs[j]) })
	for _, obj := range objs {
		remap(obj, in.NamespaceMappings)
	}
	if err := drillGuard(c, in, objs, args.Namespace); err != nil {
		return runbooks.StepResult{}, err
	}
	if err := GuardDrillNamespaces(ctx, c, in, "kube.apply", true, touched(objs, args.Namespace)...); err != nil {
		return runbooks.StepResult{}, err
	}
	var applied []string
	for _, obj := range objs {
		ref, err := a.applyOne(ctx, c, obj, args.Namespace)
		if err != nil {
			return runbooks.StepResult{}, err
		}
		applied = append(applied, ref)
	}
	return runbooks.StepResult{Summary: fmt.Sprintf("applied %d object(s) from %s", len(applied), args.Path), Outputs: map[string]any{"applied": applied}}, nil
}

// touched are the namespaces objs land in or are (Namespace objects), once
// each; drillGuard has already refused any outside the drill's.
func touched(objs []*unstructured.Unstructured, defaultNS string) []string {
	var out []string
	for _, o := range objs {
		ns := o.GetNamespace()
		if o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" {
			ns = o.GetName()
		} else if ns == "" {
			ns = defaultNS
		}
		if ns != "" && !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	return out
}

func order(o *unstructured.Unstructured) int {
	if n, ok := kindOrder[o.GetKind()]; ok {
		return n
	}
	return 10
}

func (a *Actions) applyOne(ctx context.Context, c *Client, obj *unstructured.Unstructured, defaultNS string) (string, error) {
	ref, _, err := a.apply(ctx, c, obj, defaultNS, false)
	return ref, err
}

// apply server-side-applies obj (dryRun: the API server computes the result
// with DryRun=All and stores nothing) and returns the object as applied and
// as it was before (nil when it did not exist).
func (a *Actions) apply(ctx context.Context, c *Client, obj *unstructured.Unstructured, defaultNS string, dryRun bool) (string, applied, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		if r, ok := c.Mapper.(meta.ResettableRESTMapper); ok {
			r.Reset() // a CRD applied just before may have added the kind
		}
		mapping, err = c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		if meta.IsNoMatchError(err) {
			return "", applied{}, fmt.Errorf("kube.apply: the cluster does not know %s (is its CRD installed?): %w", gvk, err)
		}
		return "", applied{}, classify("kube.apply", err)
	}
	res := c.Dynamic.Resource(mapping.Resource)
	ref := strings.ToLower(gvk.Kind) + "/" + obj.GetName()
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var err2 error
	var out applied
	ri := dynamic.ResourceInterface(res)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := obj.GetNamespace()
		if ns == "" {
			ns = defaultNS
		}
		if ns == "" {
			ns = "default"
		}
		obj.SetNamespace(ns)
		ref = ns + "/" + ref
		ri = res.Namespace(ns)
	}
	if dryRun {
		out.before, _ = ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	}
	out.after, err2 = ri.Apply(ctx, obj.GetName(), obj, opts)
	if err2 != nil {
		return "", applied{}, classify("kube.apply "+ref, err2)
	}
	return ref, out, nil
}

// applied is an object as an apply left it, and as it was before.
type applied struct{ before, after *unstructured.Unstructured }

// readManifests reads every object of a file or a directory (sorted, not recursive).
func (a *Actions) readManifests(path string) ([]*unstructured.Unstructured, error) {
	if !filepath.IsAbs(path) && a.BaseDir != "" {
		path = filepath.Join(a.BaseDir, path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, badArgs("kube.apply: manifests %s: %v (relative paths are resolved from the worker's baseDir)", path, err)
	}
	files := []string{path}
	if st.IsDir() {
		files = nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, badArgs("kube.apply: %v", err)
		}
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, badArgs("kube.apply: %v", err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for i := 0; ; i++ {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, badArgs("kube.apply: %s document %d: %v", f, i+1, err)
			}
			if len(m) == 0 {
				continue
			}
			u := &unstructured.Unstructured{Object: m}
			if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
				return nil, badArgs("kube.apply: %s document %d needs apiVersion, kind and metadata.name", f, i+1)
			}
			objs = append(objs, u)
		}
	}
	if len(objs) == 0 {
		return nil, badArgs("kube.apply: no manifests in %s", path)
	}
	return objs, nil
}

// remap rewrites namespaces through a drill's mappings.
func remap(o *unstructured.Unstructured, m map[string]string) {
	if len(m) == 0 {
		return
	}
	if to, ok := m[o.GetNamespace()]; ok {
		o.SetNamespace(to)
	}
	if o.GetKind() == "Namespace" {
		if to, ok := m[o.GetName()]; ok {
			o.SetName(to)
		}
	}
	if k := o.GetKind(); k == "RoleBinding" || k == "ClusterRoleBinding" {
		subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
		for _, s := range subjects {
			if sm, ok := s.(map[string]any); ok {
				if ns, ok := sm["namespace"].(string); ok && m[ns] != "" {
					sm["namespace"] = m[ns]
				}
			}
		}
		_ = unstructured.SetNestedSlice(o.Object, subjects, "subjects")
	}
}
