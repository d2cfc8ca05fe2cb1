package activities

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lifeboat-dr/lifeboat/activities/httpcheck"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// arg builds an ArgSpec; req marks it required.
func arg(name string, t runbooks.ArgType, req bool, doc string) runbooks.ArgSpec {
	return runbooks.ArgSpec{Name: name, Type: t, Required: req, Doc: doc}
}

var target = arg("target", runbooks.ArgString, true, "a target declared in spec.targets")

// outputs declares an action's outputs from "name: doc" lines.
func outputs(lines ...string) []runbooks.OutputSpec {
	out := make([]runbooks.OutputSpec, len(lines))
	for i, l := range lines {
		name, doc, _ := strings.Cut(l, ": ")
		out[i] = runbooks.OutputSpec{Name: name, Doc: doc}
	}
	return out
}

// pgConn are the arguments every postgres.* step reaches its server with.
func pgConn() []runbooks.ArgSpec {
	return []runbooks.ArgSpec{
		arg("dsnFile", runbooks.ArgString, false, "file holding the connection string (postgres://USER:PASSWORD@HOST:PORT/DB), in a directory of secrets.dirs"),
		arg("dsnEnv", runbooks.ArgString, false, "environment variable holding the connection string, listed in secrets.env"),
		arg("clone", runbooks.ArgString, false, "in a drill: the drill clone instance to work on (spec.drill.with), reached with the connection string's credentials"),
	}
}

// all combines Checks.
func all(checks ...func(map[string]any) []string) func(map[string]any) []string {
	return func(args map[string]any) []string {
		var out []string
		for _, c := range checks {
			out = append(out, c(args)...)
		}
		return out
	}
}

// oneOf returns a Check that wants an optional string argument to be one of values.
func oneOf(name string, values ...string) func(map[string]any) []string {
	return func(args map[string]any) []string {
		v, ok := args[name].(string)
		if !ok || slices.Contains(values, v) {
			return nil
		}
		return []string{fmt.Sprintf("%s: %q is not one of %s", name, v, strings.Join(values, ", "))}
	}
}

// exactlyOne returns a Check that wants exactly one of the named arguments.
func exactlyOne(names ...string) func(map[string]any) []string {
	return func(args map[string]any) []string {
		n := 0
		for _, k := range names {
			if _, ok := args[k]; ok {
				n++
			}
		}
		if n != 1 {
			return []string{fmt.Sprintf("%s: give exactly one of %v", names[0], names)}
		}
		return nil
	}
}

// table is the whole DESIGN §5 catalogue, in the order people read it.
var table = []runbooks.ActionSpec{
	{Name: TerraformApply, Outputs: outputs("*: each terraform output by its name (sensitive ones cannot be referenced)"), Effect: runbooks.EffectInfrastructure, Drill: runbooks.DrillOverrideOrSkip, DrillOverrides: []string{"varFiles", "vars", "dir"},
		Doc: "terraform init + validate + apply of a directory; outputs returned", Heartbeats: true,
		Args: []runbooks.ArgSpec{
			arg("dir", runbooks.ArgString, true, "directory of the terraform configuration"),
			arg("vars", runbooks.ArgObject, false, "input variables"),
			arg("varFiles", runbooks.ArgStrings, false, "variable files, relative to dir"),
		}},
	{Name: TerraformOutput, Outputs: outputs("*: each terraform output by its name (sensitive ones cannot be referenced)"), Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing, Doc: "read terraform outputs of an applied directory",
		Args: []runbooks.ArgSpec{
			arg("dir", runbooks.ArgString, true, "directory of the terraform configuration"),
			arg("names", runbooks.ArgStrings, false, "outputs to return (default: all)"),
		}},
	{Name: KubeApply, Outputs: outputs("applied: the objects applied, kind/namespace/name"), Effect: runbooks.EffectClusterScoped, Drill: runbooks.DrillMapNamespaces, DrillOverrides: []string{"path"},
		Doc: "server-side apply of a directory of manifests (field manager lifeboat); in a drill every object must land in a drill namespace, and cluster-scoped objects need drill manifests (spec.drill.with.STEP.path)",
		Args: []runbooks.ArgSpec{target,
			arg("path", runbooks.ArgString, true, "file or directory of manifests"),
			arg("namespace", runbooks.ArgString, false, "namespace for namespaced objects that name none"),
		}},
	{Name: KubeCanI, Outputs: outputs("allowed: true when allowed"), Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing, Doc: "SubjectAccessReview: may a user or service account do a verb on a resource",
		Args: []runbooks.ArgSpec{target,
			arg("as", runbooks.ArgString, true, "user, e.g. system:serviceaccount:NS:NAME"),
			arg("verb", runbooks.ArgString, true, "get, list, create, …"),
			arg("resource", runbooks.ArgString, true, "resource, e.g. secrets"),
			arg("group", runbooks.ArgString, false, "API group (empty for core)"),
			arg("namespace", runbooks.ArgString, false, "namespace of the check"),
			arg("name", runbooks.ArgString, false, "object name"),
		}},
	{Name: KubeSecretsPresent, Outputs: outputs("secrets: the Secrets found (names and keys only)"), Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing, Doc: "named Secrets exist with their keys (names and keys only, never values)",
		Args: []runbooks.ArgSpec{target,
			arg("namespace", runbooks.ArgString, true, "namespace of the secrets"),
			arg("names", runbooks.ArgStrings, true, "secret names"),
			arg("keys", runbooks.ArgObject, false, "secret name → list of keys that must be present"),
		}},
	{Name: KubePVCBound, Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing, Doc: "PersistentVolumeClaims are Bound",
		Args: []runbooks.ArgSpec{target,
			arg("namespace", runbooks.ArgString, true, "namespace of the claims"),
			arg("names", runbooks.ArgStrings, false, "claim names (default: all in the namespace)"),
		}},
	{Name: KubeCRDsEstablished, Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing, Doc: "CustomResourceDefinitions are Established",
		Args: []runbooks.ArgSpec{target,
			arg("names", runbooks.ArgStrings, true, "CRD names, e.g. restores.velero.io"),
		}},
	{Name: KubeScale, Outputs: outputs("previousReplicas: replica counts before the change, by workload"), Effect: runbooks.EffectNamespaced, Drill: runbooks.DrillMapNamespaces, Doc: "scale Deployments/StatefulSets to replica counts",
		Args: []runbooks.ArgSpec{target,
			arg("namespace", runbooks.ArgString, true, "namespace of the workloads"),
			arg("replicas", runbooks.ArgIntMap, true, "workload name → replicas"),
		}},
	{Name: KubeWaitReady, Outputs: outputs("ready: the workloads found ready"), Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing, Doc: "wait until Deployments, StatefulSets and DaemonSets are ready", Heartbeats: true,
		Args: []runbooks.ArgSpec{target,
			arg("namespace", runbooks.ArgString, true, "namespace of the workloads"),
			arg("names", runbooks.ArgStrings, false, "workload names (default: all in the namespace)"),
		}},
	{Name: KubeDeleteNamespace, Effect: runbooks.EffectNamespaced, Drill: runbooks.DrillMapNamespaces, Doc: "delete a namespace and wait until it is gone", Heartbeats: true,
		Args: []runbooks.ArgSpec{target,
			arg("namespace", runbooks.ArgString, true, "namespace to delete"),
		}},
	{Name: VeleroRestore, Outputs: outputs("restore: the Restore's name", "backup: the backup restored", "itemsRestored: items Velero restored", "warnings: Velero's warning count", "kinds: how many of each expected kind it restored"), Effect: runbooks.EffectNamespaced, Drill: runbooks.DrillMapNamespaces,
		Doc:           "Velero Restore from a backup or a schedule's latest backup; waits until the target cluster's ReadOnly locations synced the bucket, then for completion; fails naming any expected kind it did not bring back",
		RecoveryPoint: true, Heartbeats: true, Check: all(exactlyOne("backup", "schedule"), oneOf("existingResourcePolicy", "none", "update")),
		Args: []runbooks.ArgSpec{target,
			arg("backup", runbooks.ArgString, false, "backup name"),
			arg("schedule", runbooks.ArgString, false, "schedule name: restore its latest completed backup"),
			arg("namespaces", runbooks.ArgStrings, false, "namespaces to restore (default: all in the backup)"),
			arg("namespaceMappings", runbooks.ArgStrMap, false, "source namespace → target namespace"),
			arg("veleroNamespace", runbooks.ArgString, false, "namespace Velero runs in (default velero)"),
			arg("existingResourcePolicy", runbooks.ArgString, false, "none (default: objects that exist are left as they are) or update (updated to the backup's version, e.g. a failback bringing DR's changes home)"),
			arg("expectKinds", runbooks.ArgStrings, false, "kinds the restore must bring back: Kind for the core group, Kind.group otherwise (CaseFile.cases.example.com) — catches a backup that silently left a CRD's resources out"),
		}},
	{Name: VeleroLatestBackup, Outputs: outputs("backup: the latest completed backup", "ageSeconds: its age in seconds"), Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing, Doc: "latest completed backup of a schedule, its age checked against the RPO",
		RecoveryPoint: true,
		Args: []runbooks.ArgSpec{target,
			arg("schedule", runbooks.ArgString, true, "schedule name"),
			arg("maxAge", runbooks.ArgDuration, false, "oldest acceptable backup (default: the runbook's RPO)"),
			arg("veleroNamespace", runbooks.ArgString, false, "namespace Velero runs in (default velero)"),
		}},
	{Name: VeleroBackup, Outputs: outputs("backup: the Backup's name", "itemsBackedUp: items backed up", "completedAt: completion time (RFC3339)"), Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing,
		Doc:           "take a Velero backup now (of namespaces, or with a schedule's template) and wait for Completed; its completion time is a recovery point. Read-only for the cluster: it writes a Backup record and object storage only",
		RecoveryPoint: true, Heartbeats: true, Check: exactlyOne("namespaces", "schedule"),
		Args: []runbooks.ArgSpec{target,
			arg("namespaces", runbooks.ArgStrings, false, "namespaces to back up"),
			arg("schedule", runbooks.ArgString, false, "take it with this schedule's template, labelled as the schedule's"),
			arg("storageLocation", runbooks.ArgString, false, "backup storage location (default: Velero's default)"),
			arg("ttl", runbooks.ArgDuration, false, "how long Velero keeps it (default: Velero's, 30 days)"),
			arg("veleroNamespace", runbooks.ArgString, false, "namespace Velero runs in (default velero)"),
		}},
	{Name: PostgresLag, Outputs: outputs("receiveLsn: WAL received", "replayLsn: WAL replayed", "streaming: whether it streams from its primary now", "recoveryPoint: its recovery point (RFC3339)", "lagSeconds: the recovery point's age", "lastReplayedCommit: its newest replayed commit"),
		Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing, RecoveryPoint: true, Check: exactlyOne("dsnFile", "dsnEnv"),
		Doc:  "a PostgreSQL standby's replication state and recovery point (caught up with the primary's last message, else its newest replayed commit); fails when older than maxLag",
		Args: append(pgConn(), arg("maxLag", runbooks.ArgDuration, false, "oldest acceptable recovery point (default: the runbook's RPO)"))},
	{Name: PostgresPromote, Outputs: outputs("alreadyPrimary: true when it was a primary already", "lsn: its WAL position after the promotion"),
		Effect: runbooks.EffectInfrastructure, Drill: runbooks.DrillOverrideOrSkip, DrillOverrides: []string{"clone"}, Check: exactlyOne("dsnFile", "dsnEnv"),
		Doc:  "promote a PostgreSQL standby (idempotent; refused while it streams from a live primary); in a drill it clones the standby into the clone instance and promotes the clone",
		Args: append(pgConn(), arg("fence", runbooks.ArgString, false, "a local instance (postgres.instances) that is the current primary, stopped cleanly first: a switchover"))},
	{Name: PostgresVerify, Outputs: outputs("rows.TABLE: rows counted", "newest.TABLE: the newest row's time"),
		Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing, Check: exactlyOne("dsnFile", "dsnEnv"),
		Doc: "SQL checks of restored data in a read-only transaction: row counts, the newest business record within the RPO of the declaration, queries that must return true",
		Args: append(pgConn(),
			arg("rowCounts", runbooks.ArgIntMap, false, "table → the fewest rows it must hold"),
			arg("newest", runbooks.ArgStrMap, false, "table → timestamp column whose newest value must be within `within` of the declared disaster"),
			arg("within", runbooks.ArgDuration, false, "bound for newest (default: the runbook's RPO)"),
			arg("queries", runbooks.ArgStrMap, false, "name → SQL returning one boolean that must be true"))},
	{Name: PostgresRewind, Outputs: outputs("replayLsn: WAL replayed once it streams"),
		Effect: runbooks.EffectInfrastructure, Drill: runbooks.DrillOverrideOrSkip, DrillOverrides: []string{"instance"}, Check: exactlyOne("dsnFile", "dsnEnv"),
		Doc:  "make a local PostgreSQL instance (the old primary) a standby of the server the connection string names, with pg_rewind; a failback step (a drill may only rewind its own clone)",
		Args: append(pgConn()[:2], arg("instance", runbooks.ArgString, true, "the local instance (postgres.instances in the worker config) to rewind"))},
	{Name: PostgresRemoveClone, Effect: runbooks.EffectInfrastructure, Drill: runbooks.DrillNothing, // only ever a drill's own clone: refused outside a drill, and on any directory lifeboat did not clone
		Doc:  "stop a drill's PostgreSQL clone and delete its data directory (a teardown step; only directories lifeboat cloned for a drill)",
		Args: []runbooks.ArgSpec{arg("clone", runbooks.ArgString, true, "the clone instance (postgres.instances, drillClone: true)")}},
	{Name: ArgoCDSync, Outputs: outputs("revision: the git revision synced", "health: the Application's health"), Effect: runbooks.EffectClusterScoped, Drill: runbooks.DrillOverrideOrSkip, DrillOverrides: []string{"app"},
		Doc: "sync an Argo CD Application and wait for Synced and Healthy", Heartbeats: true,
		Args: []runbooks.ArgSpec{target,
			arg("app", runbooks.ArgString, true, "Application name"),
			arg("argocdNamespace", runbooks.ArgString, false, "namespace of the Application (default argocd)"),
			arg("revision", runbooks.ArgString, false, "revision to sync (default: the Application's)"),
			arg("prune", runbooks.ArgBool, false, "prune resources no longer in git"),
		}},
	{Name: CloudflareDNSSwitch, Outputs: outputs("recordId: the record's id", "previous: the record before the switch (type, content, ttl, proxied)", "current: the record after it"), Effect: runbooks.EffectEdge, Drill: runbooks.DrillOverrideOrSkip, DrillOverrides: []string{"record"},
		Doc: "point a DNS record at the DR target; returns the previous value for failback",
		Args: []runbooks.ArgSpec{
			arg("zone", runbooks.ArgString, true, "zone name, e.g. example.com"),
			arg("record", runbooks.ArgString, true, "record name, e.g. case.example.com"),
			arg("to", runbooks.ArgString, true, "new content: a hostname (CNAME) or an IP (A/AAAA)"),
			arg("type", runbooks.ArgString, false, "record type (default: CNAME for a name, A/AAAA for an IP)"),
			arg("ttl", runbooks.ArgInt, false, "TTL in seconds (1 = automatic)"),
			arg("proxied", runbooks.ArgBool, false, "proxy through Cloudflare"),
		}},
	{Name: CloudflareLBFailover, Outputs: outputs("previousDefaultPools: the default pools before", "primaryWasEnabled: whether the primary pool was enabled before"), Effect: runbooks.EffectEdge, Drill: runbooks.DrillOverrideOrSkip, DrillOverrides: []string{"loadBalancer"},
		Doc: "fail a load balancer over: disable the primary pool or make the DR pool default",
		Check: func(args map[string]any) []string {
			if args["primaryPool"] == nil && args["drPool"] == nil {
				return []string{"drPool: give drPool (make it the default), primaryPool (disable it), or both"}
			}
			return nil
		},
		Args: []runbooks.ArgSpec{
			arg("zone", runbooks.ArgString, true, "zone name"),
			arg("loadBalancer", runbooks.ArgString, true, "load balancer hostname"),
			arg("primaryPool", runbooks.ArgString, false, "pool to disable"),
			arg("drPool", runbooks.ArgString, false, "pool to make the default"),
		}},
	{Name: CloudflareLBRestore, Outputs: outputs("previousDefaultPools: the default pools before the restore"), Effect: runbooks.EffectEdge, Drill: runbooks.DrillOverrideOrSkip, DrillOverrides: []string{"loadBalancer"},
		Doc: "put a load balancer back as lbFailover found it (a failback): default pool order, primary pool enabled",
		Args: []runbooks.ArgSpec{
			arg("zone", runbooks.ArgString, true, "zone name"),
			arg("loadBalancer", runbooks.ArgString, true, "load balancer hostname"),
			arg("defaultPools", runbooks.ArgStrings, false, "pool ids in their former order (lbFailover's previousDefaultPools)"),
			arg("enablePool", runbooks.ArgString, false, "pool to enable again (the primary lbFailover disabled)"),
		}},
	{Name: HTTPCheck, Outputs: outputs("status: the HTTP status", "latencyMs: the answer's latency"), Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing, Doc: "HTTP request that must answer with the expected status (and body text); a method other than GET, HEAD or OPTIONS is an external side effect a drill must skip or point away (spec.drill.with.STEP.url)",
		DrillOverrides: []string{"url"}, ChangesWith: httpcheck.ChangesWith,
		Args: []runbooks.ArgSpec{
			arg("url", runbooks.ArgString, true, "URL to request"),
			arg("method", runbooks.ArgString, false, "HTTP method (default GET)"),
			arg("expectStatus", runbooks.ArgInt, false, "expected status (default 200)"),
			arg("expectBody", runbooks.ArgString, false, "text the body must contain"),
			arg("headers", runbooks.ArgStrMap, false, "request headers (literal: nothing secret)"),
			arg("headersEnv", runbooks.ArgStrMap, false, "header → worker environment variable holding its value (secrets.env must allow it)"),
			arg("headersFile", runbooks.ArgStrMap, false, "header → file holding its value (in a secrets.dirs directory)"),
			arg("requestTimeout", runbooks.ArgDuration, false, "per-request timeout (default 10s)"),
		}},
	{Name: NotifyWebhook, Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing, Doc: "post a Slack-compatible message to a webhook", Check: exactlyOne("url", "urlEnv"),
		Args: []runbooks.ArgSpec{
			arg("url", runbooks.ArgString, false, "webhook URL"),
			arg("urlEnv", runbooks.ArgString, false, "name of the worker's environment variable holding the URL (for secret URLs; secrets.env must allow it)"),
			arg("text", runbooks.ArgString, true, "message; {runbook}, {mode}, {step}, {workflowId} are filled in"),
		}},
	{Name: ManualTask, Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing, Doc: "a person does something, then acknowledges it (lifeboat ack RUN STEP)", Human: true,
		Args: []runbooks.ArgSpec{
			arg("instructions", runbooks.ArgString, true, "what to do, written for someone who did not design the system"),
			arg("assignee", runbooks.ArgString, false, "who should do it"),
		}},
	{Name: EvidenceStore, Outputs: outputs("json: the stored JSON file", "markdown: the stored Markdown file"), Effect: runbooks.EffectReadOnly, Drill: runbooks.DrillNothing, Doc: "store the evidence so far (JSON and Markdown) in the worker's evidence sink",
		Args: []runbooks.ArgSpec{
			arg("label", runbooks.ArgString, false, "label of this checkpoint"),
		}},
}
