// Package runbooks holds the lifeboat/v1 runbook format: its types, a strict
// YAML loader, a validator that reports every problem with its path, a planner
// (layer order, parallel groups, critical path against the RTO) and a catalog
// of runbooks looked up by name. Sub-packages, one job each:
//   - proof: the signed decisions and who may sign them;
//   - record: the evidence record a run leaves (its Markdown, timeline
//     picture, HTML page and seal digests), and the comparison of two records;
//   - failback: the runbook that undoes a failover, built from its record.
//
// It imports nothing else of lifeboat's but proof, so the workflow, the
// activities and the CLI can all share it; record and failback build on it.
package runbooks
