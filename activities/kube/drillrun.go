package kube

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// DrillRunLabel marks a namespace a drill created: its value names the
// drill (DrillRunValue), and the annotation of the same key holds the
// drill's whole workflow id. In a drill or its teardown, a changing action
// touches a namespace only when it carries this drill's label.
const DrillRunLabel = "lifeboat.dev/drill-run"

// DrillRunValue is the label value for drill run id: the id itself when it
// is a valid label value, else "h-" and the start of its SHA-256.
func DrillRunValue(id string) string {
	if len(validation.IsValidLabelValue(id)) == 0 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "h-" + hex.EncodeToString(sum[:])[:40]
}

// GuardDrillNamespaces is the drill guard at the point of change: before
// action changes anything in namespaces, a step of a drill (or of its
// teardown) must be changing only namespaces this drill created — a
// destination of spec.drill.namespaceMappings that is no mapping's source,
// labelled DrillRunLabel for this drill. With create, a missing namespace
// is created with the label (velero.restore and kube.apply restore into
// it) and the worker's drill ClusterRole is bound to it there
// (bindDrillRole); without, a missing one is left alone (gone is what a
// teardown wants; a scale of it fails on its own). A namespace that exists
// without this drill's label is refused, nothing changed: it may be
// production. Outside drills, and for drill steps of runs older than the
// label (DrillRun empty), it checks nothing.
func GuardDrillNamespaces(ctx context.Context, c *Client, in runbooks.StepInput, action string, create bool, namespaces ...string) error {
	if !in.Drill() || in.DrillRun == "" {
		return nil
	}
	dests := DrillDestinations(in)
	want := DrillRunValue(in.DrillRun)
	for _, ns := range namespaces {
		if !slices.Contains(dests, ns) {
			return drillUnsafe(action, fmt.Sprintf("namespace %s is not a drill namespace (drill namespaces: %s)", ns, runbooks.OrDash(strings.Join(dests, ", "))))
		}
		got, err := c.Typed.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) && create:
			obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
				Labels: map[string]string{DrillRunLabel: want}, Annotations: map[string]string{DrillRunLabel: in.DrillRun}}}
			_, err := c.Typed.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{FieldManager: "lifeboat"})
			if apierrors.IsAlreadyExists(err) { // created meanwhile: check it like any other
				err = GuardDrillNamespaces(ctx, c, in, action, false, ns)
				if err != nil {
					return err // already a refusal or a classified error: not wrapped again
				}
			}
			if err != nil {
				return classify(action, err)
			}
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return classify(action, err)
		case got.Labels[DrillRunLabel] != want:
			return drillUnsafe(action, fmt.Sprintf("namespace %s exists and is not labelled %s=%s, so this drill did not create it (it may be production; its label says %q). Nothing was changed. If it is left over from an earlier drill, delete it (kubectl delete namespace %s) and run again",
				ns, DrillRunLabel, want, got.Labels[DrillRunLabel], ns))
		}
		if create { // also when an earlier attempt made the namespace and stopped before binding
			if err := bindDrillRole(ctx, c, action, ns, want); err != nil {
				return err
			}
		}
	}
	return nil
}

// bindDrillRole binds the worker's drill ClusterRole (Client.DrillRole) to
// the worker's own identity in drill namespace ns, so that what a drill
// does in its namespaces is granted there and nowhere else: lifeboat rbac
// binds that ClusterRole nowhere, and the namespace's deletion in the
// teardown removes the binding. The worker may create RoleBindings and
// bind that one ClusterRole; lifeboat rbac's admission policy holds it to
// drill namespaces, and nothing is bound unless that policy is in force
// (drillRoleReady). Without the ClusterRole there is nothing to bind: a
// worker that was not given lifeboat rbac's objects (an administrator, as
// lifeboat dev's) holds the drill's verbs otherwise. A binding already
// there (an earlier attempt's) is kept when it binds that role to the
// worker alone, and refused otherwise.
func bindDrillRole(ctx context.Context, c *Client, action, ns, label string) error {
	if c.DrillRole == "" {
		return nil
	}
	role, err := c.drillRoleReady(ctx, ns)
	switch {
	case err != nil:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: ClusterRole %s is not bound in drill namespace %s: %v. %s", action, c.DrillRole, ns, err, drillRoleFix(c)), "Forbidden", nil)
	case role == nil:
		return nil // no such ClusterRole: a worker that holds the drill's verbs otherwise (lifeboat dev's)
	}
	me, err := c.Self(ctx)
	if err != nil {
		return classify(action, err)
	}
	want := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: c.DrillRole, Namespace: ns, Labels: map[string]string{DrillRunLabel: label}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: c.DrillRole},
		Subjects:   []rbacv1.Subject{me},
	}
	bindings := c.Typed.RbacV1().RoleBindings(ns)
	_, err = bindings.Create(ctx, want, metav1.CreateOptions{FieldManager: "lifeboat"})
	switch {
	case err == nil:
		return awaitBinding(ctx, c, action, ns, role)
	case apierrors.IsAlreadyExists(err):
		got, err := bindings.Get(ctx, c.DrillRole, metav1.GetOptions{})
		if err != nil {
			return classify(action, err)
		}
		if got.RoleRef != want.RoleRef || !slices.Equal(got.Subjects, want.Subjects) {
			return drillUnsafe(action, fmt.Sprintf("RoleBinding %s/%s exists and does not bind ClusterRole %s to the worker (%s %s): someone else made it. Delete it (or the drill namespace) and run again",
				ns, c.DrillRole, c.DrillRole, me.Kind, me.Name))
		}
		return awaitBinding(ctx, c, action, ns, role) // an earlier attempt may have made it a moment ago
	case apierrors.IsForbidden(err), apierrors.IsNotFound(err):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"%s: the worker could not bind ClusterRole %s in drill namespace %s (%v). %s", action, c.DrillRole, ns, err, drillRoleFix(c)), "Forbidden", nil)
	}
	return classify(action, err)
}

// drillRoleReady returns the drill's ClusterRole in c's cluster (nil:
// there is none, nothing to bind) and, when there is one, checks that the
// admission policy keeping its bindings to drill namespaces is in force (an
// error when not). Asked at each bind: a policy removed since is caught.
func (c *Client) drillRoleReady(ctx context.Context, ns string) (*rbacv1.ClusterRole, error) {
	role, err := c.Typed.RbacV1().ClusterRoles().Get(ctx, c.DrillRole, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading ClusterRole %s: %w", c.DrillRole, err)
	}
	return role, policyInForce(ctx, c, ns)
}

// awaitBinding waits until the API server's authorizer applies the drill
// role just bound in ns (its RBAC cache follows a new RoleBinding a moment
// later; an apply in between was refused as Forbidden, seen on the rig):
// one SelfSubjectAccessReview of the role's first rule until allowed. Not
// applied within a minute, the activity retries.
func awaitBinding(ctx context.Context, c *Client, action, ns string, role *rbacv1.ClusterRole) error {
	var probe *Access
	for _, r := range role.Rules {
		if len(r.Verbs) > 0 && len(r.APIGroups) > 0 && len(r.Resources) > 0 && len(r.ResourceNames) == 0 {
			probe = &Access{Verb: r.Verbs[0], Group: r.APIGroups[0], Resource: r.Resources[0], Namespace: ns}
			break
		}
	}
	if probe == nil {
		return nil // a role granting nothing namespaced: nothing to wait for
	}
	wait, deadline := 50*time.Millisecond, time.Now().Add(time.Minute)
	for {
		allowed, _, err := c.review(ctx, *probe)
		switch {
		case err != nil:
			return classify(action, err)
		case allowed:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("%s: ClusterRole %s is bound in drill namespace %s, but after a minute the API server still refuses the worker %s %s there; the activity retries", action, c.DrillRole, ns, probe.Verb, probe.Resource)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// drillRoleFix says how to give the worker its drill role in c's cluster.
func drillRoleFix(c *Client) string {
	return fmt.Sprintf("Apply `lifeboat rbac CATALOG`'s objects to %s again (they make ClusterRole %s and let the worker bind it in drill namespaces); if lifeboat rbac ran with --name NAME, set kube.drillRole: NAME-drill in the worker config; kube.drillRole: \"\" is for a worker that holds the drill's permissions cluster-wide", c.Context, c.DrillRole)
}

// SubjectOf is the RBAC subject of a username: a ServiceAccount for
// system:serviceaccount:NAMESPACE:NAME, else a User.
func SubjectOf(username string) rbacv1.Subject {
	if rest, ok := strings.CutPrefix(username, "system:serviceaccount:"); ok {
		if ns, name, ok := strings.Cut(rest, ":"); ok {
			return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
		}
	}
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: username}
}

// DrillDestinations are the namespaces a drill may change, sorted: the
// destinations of spec.drill.namespaceMappings that are no mapping's source
// and not mapped to themselves (the validator refuses such mappings; this
// keeps a step input built any other way from widening the scope).
func DrillDestinations(in runbooks.StepInput) []string {
	var dests []string
	for from, to := range in.NamespaceMappings {
		if in.NamespaceMappings[to] == "" && to != from && !slices.Contains(dests, to) {
			dests = append(dests, to)
		}
	}
	slices.Sort(dests)
	return dests
}

func drillUnsafe(action, why string) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s in a drill refused: %s", action, why), "DrillUnsafe", nil)
}

// veleroRestores are Velero's Restore objects (velero.io/v1).
var veleroRestores = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "restores"}

// VeleroRestoreEnded reports whether a Velero Restore in phase has ended:
// Completed, PartiallyFailed, Failed or FailedValidation (New, InProgress,
// WaitingForPluginOperations… and Finalizing… still change the cluster).
func VeleroRestoreEnded(phase string) bool {
	return slices.Contains([]string{"Completed", "PartiallyFailed", "Failed", "FailedValidation"}, phase)
}

// waitForRestoresInto waits, heartbeating, until no Velero Restore that
// maps a namespace into ns is still running: a teardown that deleted a
// drill namespace while a restore was filling it would see the restore
// recreate it, unlabelled, after the drill. Velero cannot stop a restore;
// an aborted velero.restore step waits for its own, and this catches one
// whose step ran out of time first. A cluster without Velero has none.
func waitForRestoresInto(ctx context.Context, c *Client, ns string) error {
	ctx, cancel := BeforeDeadline(ctx)
	defer cancel()
	for {
		list, err := c.Dynamic.Resource(veleroRestores).List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return nil
		}
		if err != nil {
			return classify("kube.deleteNamespace", err)
		}
		var running []string
		for _, r := range list.Items {
			phase, _, _ := unstructured.NestedString(r.Object, "status", "phase")
			if VeleroRestoreEnded(phase) {
				continue
			}
			mapping, _, _ := unstructured.NestedStringMap(r.Object, "spec", "namespaceMapping")
			for _, to := range mapping {
				if to == ns {
					running = append(running, r.GetNamespace()+"/"+r.GetName()+" ("+cmp.Or(phase, "New")+")")
				}
			}
		}
		if len(running) == 0 {
			return nil
		}
		heartbeat(ctx, fmt.Sprintf("waiting for velero restore %s into %s to end before deleting it", strings.Join(running, ", "), ns))
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube.deleteNamespace: velero restore %s into namespace %s is still running: deleting the namespace now would let the restore recreate it; the step waits for it on its next attempt", strings.Join(running, ", "), ns)
		case <-time.After(time.Second):
		}
	}
}
