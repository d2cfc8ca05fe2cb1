package rbac

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
)

// drillPolicy is the ValidatingAdmissionPolicy NAME-drill-scope and its
// binding. To bind the drill's ClusterRole in the namespaces drills make,
// the worker may create RoleBindings in any namespace and bind that one
// ClusterRole; RBAC cannot narrow either to namespaces that do not exist
// yet, so admission does:
//   - the drill role is bound by the worker alone (whoever else holds bind
//     on it, through a Role the worker made them or otherwise), only in a
//     drill namespace (one of DrillSpaces carrying a drill label), only to
//     the worker itself, and never cluster-wide;
//   - the worker makes other RoleBindings only in drill namespaces and in
//     the namespaces where the runbooks apply RoleBindings;
//   - the worker puts a drill label only on a namespace of DrillSpaces,
//     when it creates it, and never changes it after (subresources too).
//
// The pre-check and the drill guard prove the policy is in force before a
// drill relies on it (kube's policyInForce asks the API server to dry-run
// a binding it must refuse).
func (g *Grant) drillPolicy(name, drill string, subject Subject) []any {
	var applied []string // namespaces where the runbooks apply RoleBindings
	for _, ns := range slices.Sorted(maps.Keys(g.Namespaces)) {
		if slices.ContainsFunc(g.Namespaces[ns], func(r rbacv1.PolicyRule) bool { return r.Resources[0] == "rolebindings" }) {
			applied = append(applied, ns)
		}
	}
	labelOf := func(obj string) string { // the drill label's value, '' when absent
		return fmt.Sprintf("(has(%[1]s.metadata.labels) && %[2]s in %[1]s.metadata.labels ? %[1]s.metadata.labels[%[2]s] : '')", obj, strconv.Quote(kube.DrillRunLabel))
	}
	vars := []admissionv1.Variable{
		{Name: "byTheWorker", Expression: celSubject(subject)},
		{Name: "drillNamespaces", Expression: celList(slices.Sorted(slices.Values(g.DrillSpaces)))},
		{Name: "bindsDrillRole", Expression: "object.roleRef.kind == 'ClusterRole' && object.roleRef.name == " + strconv.Quote(drill)},
		{Name: "inDrillNamespace", Expression: "request.namespace in variables.drillNamespaces && " + labelOf("namespaceObject") + " != ''"},
		{Name: "onlyTheWorker", Expression: "!has(object.subjects) || object.subjects.all(s, (s.kind == 'User' && s.name == request.userInfo.username) || " +
			"(s.kind == 'ServiceAccount' && has(s.namespace) && 'system:serviceaccount:' + s.namespace + ':' + s.name == request.userInfo.username))"},
	}
	forbidden := metav1.StatusReasonForbidden
	check := func(resource, rule, message string) admissionv1.Validation {
		return admissionv1.Validation{Expression: fmt.Sprintf("request.resource.resource != %q || (%s)", resource, rule), Reason: &forbidden,
			Message: message + " (admission policy " + name + "-drill-scope, from lifeboat rbac)"}
	}
	validations := []admissionv1.Validation{
		check("rolebindings", "!variables.bindsDrillRole || (variables.byTheWorker && variables.inDrillNamespace && variables.onlyTheWorker)",
			fmt.Sprintf("ClusterRole %s is bound only by lifeboat's worker, to itself, in a drill's own namespace (%s, labelled %s)", drill, strings.Join(g.DrillSpaces, ", "), kube.DrillRunLabel)),
		check("rolebindings", "!variables.byTheWorker || variables.bindsDrillRole || variables.inDrillNamespace || request.namespace in "+celList(applied),
			"lifeboat's worker makes other RoleBindings only in a drill's namespaces and where its runbooks apply them (lifeboat rbac again after a runbook adds one)"),
		check("clusterrolebindings", "!variables.bindsDrillRole", fmt.Sprintf("ClusterRole %s is never bound cluster-wide", drill)),
		check("namespaces", "!variables.byTheWorker || "+labelOf("object")+" == '' || (object.metadata.name in variables.drillNamespaces && (request.operation == 'CREATE' || "+labelOf("object")+" == "+labelOf("oldObject")+"))",
			fmt.Sprintf("lifeboat's worker sets %s only on a namespace it creates for a drill (%s), never on one that exists", kube.DrillRunLabel, strings.Join(g.DrillSpaces, ", "))),
	}
	fail := admissionv1.Fail
	ops := []admissionv1.OperationType{admissionv1.Create, admissionv1.Update}
	policyName := name + "-drill-scope"
	tm, om := meta(admissionv1.SchemeGroupVersion, "ValidatingAdmissionPolicy", policyName, "")
	policy := &admissionv1.ValidatingAdmissionPolicy{TypeMeta: tm, ObjectMeta: om, Spec: admissionv1.ValidatingAdmissionPolicySpec{
		FailurePolicy: &fail,
		MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{
			rule(ops, rbacv1.GroupName, "rolebindings", "clusterrolebindings"),
			rule(ops, "", "namespaces", "namespaces/*"),
		}},
		Variables:   vars,
		Validations: validations,
	}}
	tm, om = meta(admissionv1.SchemeGroupVersion, "ValidatingAdmissionPolicyBinding", policyName, "")
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{TypeMeta: tm, ObjectMeta: om, Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
		PolicyName: policyName, ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny}}}
	return []any{policy, binding}
}

// rule matches operations on resources of one API group, any version.
func rule(ops []admissionv1.OperationType, group string, resources ...string) admissionv1.NamedRuleWithOperations {
	return admissionv1.NamedRuleWithOperations{RuleWithOperations: admissionv1.RuleWithOperations{Operations: ops,
		Rule: admissionv1.Rule{APIGroups: []string{group}, APIVersions: []string{"*"}, Resources: resources}}}
}

// celSubject is a CEL condition that holds for requests made as subject.
func celSubject(s Subject) string {
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		return "request.userInfo.username == " + strconv.Quote("system:serviceaccount:"+s.Namespace+":"+s.Name)
	case rbacv1.GroupKind:
		return "has(request.userInfo.groups) && " + strconv.Quote(s.Name) + " in request.userInfo.groups"
	}
	return "request.userInfo.username == " + strconv.Quote(s.Name)
}

// celList is a CEL list of strings.
func celList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
