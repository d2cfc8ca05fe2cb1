// Package runbooks holds the lifeboat/v1 runbook format: its types, a strict
// YAML loader, a validator that reports every problem with its path, a planner
// (layer order, parallel groups, critical path against the RTO), a catalog of
// runbooks looked up by name, and the Evidence record a run produces. The
// decisions' signatures are in the sub-package proof.
//
// It imports nothing else of lifeboat's but proof, so the workflow, the
// activities and the CLI can all share it.
package runbooks
