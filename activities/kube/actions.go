package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Actions implements the kube.* actions. BaseDir resolves relative manifest paths.
type Actions struct {
	Source  Source
	BaseDir string
}

// heartbeat records progress when running as an activity.
func heartbeat(ctx context.Context, details string) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, details)
	}
}

// CanIArgs are kube.canI's arguments.
type CanIArgs struct {
	Target    string `json:"target"`
	As        string `json:"as"`
	Verb      string `json:"verb"`
	Resource  string `json:"resource"`
	Group     string `json:"group"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// CanI asks the API server (SubjectAccessReview) whether the user or service
// account may do the verb. A denial is retryable: RBAC bindings applied by an
// earlier step can take a moment to reach the authorizer.
func (a *Actions) CanI(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args CanIArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	c, err := a.clientFor(in, args.Target)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	sar := &authv1.SubjectAccessReview{Spec: authv1.SubjectAccessReviewSpec{User: args.As,
		ResourceAttributes: &authv1.ResourceAttributes{Namespace: args.Namespace, Verb: args.Verb, Group: args.Group, Resource: args.Resource, Name: args.Name}}}
	if parts := strings.Split(args.As, ":"); len(parts) == 4 && parts[0] == "system" && parts[1] == "serviceaccount" {
		sar.Spec.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + parts[2], "system:authenticated"}
	}
	res, err := c.Typed.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return runbooks.StepResult{}, classify("kube.canI", err)
	}
	what := fmt.Sprintf("%s can %s %s", args.As, args.Verb, args.Resource)
	if args.Namespace != "" {
		what += " in " + args.Namespace
	}
	if !res.Status.Allowed {
		reason := res.Status.Reason
		if reason == "" {
			reason = "no RBAC rule allows it"
		}
		return runbooks.StepResult{}, fmt.Errorf("kube.canI: NO — %s is denied (%s): check the identity layer's Role/RoleBinding for this subject", what, reason)
	}
	return runbooks.StepResult{Summary: "yes: " + what, Outputs: map[string]any{"allowed": true}}, nil
}

// SecretsArgs are kube.secretsPresent's arguments.
type SecretsArgs struct {
	Target    string              `json:"target"`
	Namespace string              `json:"namespace"`
	Names     []string            `json:"names"`
	Keys      map[string][]string `json:"keys"`
}

var secretsGVR = corev1.SchemeGroupVersion.WithResource("secrets")

// SecretsPresent waits, by watching them, until the named Secrets exist with
// their keys (a secrets operator may still be writing them), within the
// step's timeout. Only names and key names are read back into the result:
// values never leave the worker.
func (a *Actions) SecretsPresent(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args SecretsArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	c, err := a.clientFor(in, args.Target)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	ctx, cancel := BeforeDeadline(ctx)
	defer cancel()
	watched := make([]Watched, len(args.Names))
	for i, name := range args.Names {
		watched[i] = Watched{GVR: secretsGVR, Namespace: args.Namespace, Name: name}
	}
	found := map[string]any{}
	var missing []string
	err = WaitFor(ctx, c, watched, func(objs [][]*unstructured.Unstructured) (bool, error) {
		found, missing = map[string]any{}, nil
		for i, name := range args.Names {
			if len(objs[i]) == 0 {
				missing = append(missing, fmt.Sprintf("secret %s/%s does not exist", args.Namespace, name))
				continue
			}
			data, _, _ := unstructured.NestedMap(objs[i][0].Object, "data")
			keys := sortedKeys(data)
			found[name] = keys
			for _, want := range args.Keys[name] {
				if _, ok := data[want]; !ok {
					missing = append(missing, fmt.Sprintf("secret %s/%s has no key %q (keys: %s)", args.Namespace, name, want, strings.Join(keys, ", ")))
				}
			}
		}
		return len(missing) == 0, nil
	}, func() { heartbeat(ctx, "waiting for "+strings.Join(missing, "; ")) })
	switch {
	case err == nil:
		return runbooks.StepResult{Summary: fmt.Sprintf("%d secret(s) present in %s", len(args.Names), args.Namespace), Outputs: map[string]any{"secrets": found}}, nil
	case ctx.Err() == nil:
		return runbooks.StepResult{}, classify("kube.secretsPresent", err)
	}
	return runbooks.StepResult{}, fmt.Errorf("kube.secretsPresent: %s — restore them from the secret manager (or wait for the secrets operator) and retry", strings.Join(missing, "; "))
}

// PVCArgs are kube.pvcBound's arguments.
type PVCArgs struct {
	Target    string   `json:"target"`
	Namespace string   `json:"namespace"`
	Names     []string `json:"names"`
}

var pvcGVR = corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims")

// PVCBound waits, by watching them, until the claims (the named ones, or
// every claim in the namespace, of which there must be one) are Bound,
// within the step's timeout.
func (a *Actions) PVCBound(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args PVCArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	c, err := a.clientFor(in, args.Target)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	ctx, cancel := BeforeDeadline(ctx)
	defer cancel()
	var names, bad []string
	err = WaitFor(ctx, c, []Watched{{GVR: pvcGVR, Namespace: args.Namespace}}, func(objs [][]*unstructured.Unstructured) (bool, error) {
		phase := map[string]string{}
		for _, u := range objs[0] {
			phase[u.GetName()], _, _ = unstructured.NestedString(u.Object, "status", "phase")
		}
		names, bad = args.Names, nil
		if len(names) == 0 {
			names = sortedKeys(phase)
		}
		for _, n := range names {
			switch p, ok := phase[n]; {
			case !ok:
				bad = append(bad, n+" (missing)")
			case p != string(corev1.ClaimBound):
				bad = append(bad, fmt.Sprintf("%s (%s)", n, runbooks.OrDash(p)))
			}
		}
		return len(names) > 0 && len(bad) == 0, nil
	}, func() { heartbeat(ctx, "waiting for claims: "+strings.Join(bad, ", ")) })
	switch {
	case err == nil:
		return runbooks.StepResult{Summary: fmt.Sprintf("%d claim(s) bound in %s", len(names), args.Namespace)}, nil
	case ctx.Err() == nil:
		return runbooks.StepResult{}, classify("kube.pvcBound", err)
	case len(names) == 0:
		return runbooks.StepResult{}, fmt.Errorf("kube.pvcBound: no PersistentVolumeClaims in %s (has the storage restore run?)", args.Namespace)
	}
	return runbooks.StepResult{}, fmt.Errorf("kube.pvcBound: not bound in %s: %s — check the storage class and the CSI driver in the target cluster", args.Namespace, strings.Join(bad, ", "))
}

// CRDArgs are kube.crdsEstablished's arguments.
type CRDArgs struct {
	Target string   `json:"target"`
	Names  []string `json:"names"`
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// CRDsEstablished waits, by watching them, until the CRDs exist and are
// Established, within the step's timeout.
func (a *Actions) CRDsEstablished(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args CRDArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	c, err := a.clientFor(in, args.Target)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	ctx, cancel := BeforeDeadline(ctx)
	defer cancel()
	watched := make([]Watched, len(args.Names))
	for i, n := range args.Names {
		watched[i] = Watched{GVR: crdGVR, Name: n}
	}
	var bad []string
	var crds []*unstructured.Unstructured
	err = WaitFor(ctx, c, watched, func(objs [][]*unstructured.Unstructured) (bool, error) {
		bad, crds = nil, nil
		for i, n := range args.Names {
			if len(objs[i]) == 0 {
				bad = append(bad, n+" (missing)")
				continue
			}
			conds, _, _ := unstructuredSlice(objs[i][0].Object, "status", "conditions")
			if !conditionTrue(conds, "Established") {
				bad = append(bad, n+" (not established)")
			}
			crds = append(crds, objs[i][0])
		}
		return len(bad) == 0, nil
	}, func() { heartbeat(ctx, "waiting for CRDs: "+strings.Join(bad, ", ")) })
	if err == nil {
		err = waitUntilDiscovered(ctx, c, crds, &bad)
	}
	switch {
	case err == nil:
		return runbooks.StepResult{Summary: fmt.Sprintf("%d CRD(s) established", len(args.Names))}, nil
	case ctx.Err() == nil:
		return runbooks.StepResult{}, classify("kube.crdsEstablished", err)
	}
	return runbooks.StepResult{}, fmt.Errorf("kube.crdsEstablished: %s — install the operators' CRDs (platform bootstrap) before restoring their objects", strings.Join(bad, ", "))
}

// waitUntilDiscovered waits until the API server's discovery serves every
// served version of the established CRDs: Established comes first and the
// discovery document follows a moment later, and an apply in between would
// not know the kind. The worker's kind mapping is refreshed on the way.
func waitUntilDiscovered(ctx context.Context, c *Client, crds []*unstructured.Unstructured, bad *[]string) error {
	for wait := 200 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		*bad = nil
		if r, ok := c.Mapper.(meta.ResettableRESTMapper); ok {
			r.Reset()
		}
		for _, crd := range crds {
			group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
			versions, _, _ := unstructuredSlice(crd.Object, "spec", "versions")
			for _, v := range versions {
				m, _ := v.(map[string]any)
				if served, _ := m["served"].(bool); !served {
					continue
				}
				version, _ := m["name"].(string)
				_, err := c.Mapper.RESTMapping(schema.GroupKind{Group: group, Kind: kind}, version)
				switch {
				case meta.IsNoMatchError(err):
					*bad = append(*bad, fmt.Sprintf("%s (established, %s/%s not yet in discovery)", crd.GetName(), group, version))
				case err != nil:
					return err
				}
			}
		}
		if len(*bad) == 0 {
			return nil
		}
		heartbeat(ctx, "waiting for CRDs: "+strings.Join(*bad, ", "))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// NamespaceArgs are kube.deleteNamespace's arguments.
type NamespaceArgs struct {
	Target    string `json:"target"`
	Namespace string `json:"namespace"`
}

// DeleteNamespace deletes a namespace and waits until it is gone. A namespace
// already gone counts as done (idempotent).
func (a *Actions) DeleteNamespace(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args NamespaceArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	c, err := a.clientFor(in, args.Target)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	if err := GuardDrillNamespaces(ctx, c, in, "kube.deleteNamespace", false, args.Namespace); err != nil {
		return runbooks.StepResult{}, err
	}
	if in.Drill() {
		if err := waitForRestoresInto(ctx, c, args.Namespace); err != nil {
			return runbooks.StepResult{}, err
		}
	}
	err = c.Typed.CoreV1().Namespaces().Delete(ctx, args.Namespace, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return runbooks.StepResult{Summary: "namespace " + args.Namespace + " already gone"}, nil
	}
	if err != nil {
		return runbooks.StepResult{}, classify("kube.deleteNamespace", err)
	}
	ctx, cancel := BeforeDeadline(ctx)
	defer cancel()
	start := time.Now()
	err = WaitFor(ctx, c, []Watched{{GVR: namespacesGVR, Name: args.Namespace}}, func(objs [][]*unstructured.Unstructured) (bool, error) {
		return len(objs[0]) == 0, nil
	}, func() { heartbeat(ctx, "waiting for namespace "+args.Namespace+" to be gone") })
	switch {
	case err == nil:
		return runbooks.StepResult{Summary: fmt.Sprintf("namespace %s deleted in %s", args.Namespace, time.Since(start).Round(time.Millisecond))}, nil
	case ctx.Err() == nil:
		return runbooks.StepResult{}, classify("kube.deleteNamespace", err)
	}
	return runbooks.StepResult{}, fmt.Errorf("kube.deleteNamespace: %s still terminating after %s (a finalizer may be stuck: kubectl get ns %s -o yaml)", args.Namespace, time.Since(start).Round(time.Second), args.Namespace)
}

var namespacesGVR = corev1.SchemeGroupVersion.WithResource("namespaces")

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func unstructuredSlice(obj map[string]any, fields ...string) ([]any, bool, error) {
	cur := any(obj)
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, nil
		}
		cur = m[f]
	}
	s, ok := cur.([]any)
	return s, ok, nil
}

func conditionTrue(conds []any, typ string) bool {
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ && m["status"] == "True" {
			return true
		}
	}
	return false
}
