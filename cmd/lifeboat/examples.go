package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// examples are the Examples of each command's help, by command path (without
// "lifeboat "). RUN is a run id as `lifeboat drill` prints it; <TAB> after a
// command completes runbook names, open runs and the steps they wait on.
var examples = map[string]string{
	"dev":             "lifeboat dev                             # dev server, UI on http://localhost:8233, a worker with runbooks/examples\nlifeboat dev --catalog runbooks/mine      # your own runbooks",
	"worker":          "lifeboat worker --config /etc/lifeboat/config.yaml",
	"validate":        "lifeboat validate runbooks/examples\nlifeboat validate --mode drill runbooks/examples   # also what a drill start would refuse\nlifeboat validate my-runbook.yaml -o json",
	"plan":            "lifeboat plan case-management-region-failover\nlifeboat plan runbooks/examples/warm-standby-failover.yaml -o json",
	"schema":          "lifeboat schema > schema/lifeboat-v1.json\nlifeboat schema -o markdown    # the field reference of docs/runbooks.md\n# then start a runbook with: # yaml-language-server: $schema=../../schema/lifeboat-v1.json",
	"actions":         "lifeboat actions\nlifeboat actions --config config.yaml    # what this worker's config can run",
	"failover":        "lifeboat failover case-management-region-failover --reason \"ca-central-1 down since 03:10\" --follow\nlifeboat failover case-management-region-failover --reason \"test of the path\" --dry-run",
	"drill":           "lifeboat drill case-management-region-failover --follow\nlifeboat drill schedule case-management-region-failover --cron \"0 3 1 * *\"",
	"drill schedule":  "lifeboat drill schedule case-management-region-failover --cron \"0 3 1 * *\" --tz Europe/Paris",
	"drill schedules": "lifeboat drill schedules",
	"drill pause":     "lifeboat drill pause lifeboat-drill-case-management-region-failover",
	"drill unpause":   "lifeboat drill unpause lifeboat-drill-case-management-region-failover",
	"drill trigger":   "lifeboat drill trigger lifeboat-drill-case-management-region-failover",
	"drill delete":    "lifeboat drill delete lifeboat-drill-case-management-region-failover",
	"tabletop":        "lifeboat tabletop warm-standby-failover --as alice\nlifeboat ack RUN confirm-outage --as alice",
	"status":          "lifeboat status RUN\nlifeboat status RUN --follow\nlifeboat status RUN -o json",
	"approve":         "lifeboat approve RUN shift-traffic --as alice --comment \"primary confirmed dead\"",
	"reject":          "lifeboat reject RUN shift-traffic --as alice --reason \"primary is back\"",
	"ack":             "lifeboat ack RUN confirm-outage --as alice",
	"retry":           "lifeboat retry RUN restore-case-data --as alice",
	"skip":            "lifeboat skip RUN business-journey --as alice --reason \"checked by hand in the browser\"",
	"abort":           "lifeboat abort RUN --as alice --reason \"wrong region\"",
	"override":        "lifeboat override RUN backup-fresh --as alice --reason \"the 26 h old backup is the newest we have\"",
	"note":            "lifeboat note RUN DBA confirms the replica lag was 4 s at 03:12",
	"precheck":        "lifeboat precheck case-management-region-failover\nlifeboat precheck case-management-region-failover --mode drill",
	"sign":            "lifeboat sign approve RUN shift-traffic --as alice    # paste into the UI's Send a Signal",
	"evidence":        "lifeboat evidence RUN\nlifeboat evidence RUN -o json --out run.json\nlifeboat evidence history.json             # rebuilt from an exported history",
	"evidence list":   "lifeboat evidence list\nlifeboat evidence list --runbook case-management-region-failover --mode drill",
	"evidence verify": "lifeboat evidence verify\nlifeboat evidence verify .lifeboat/evidence\nlifeboat evidence verify s3://lifeboat-evidence/prod",
	"readiness":       "lifeboat readiness\nlifeboat readiness --runbook case-management-region-failover --json",
	"invariant":       "lifeboat invariant case-management-region-failover",
	"failback":        "lifeboat failback RUN --reason \"ca-central-1 healthy since 09:00\" --follow",
	"teardown":        "lifeboat teardown RUN --as alice",
	"reenact":         "lifeboat reenact RUN --as alice",
	"replay":          "lifeboat replay testdata/histories/*.json\nlifeboat replay RUN",
	"codec-key":       "lifeboat codec-key k1 >> codec.keys",
	"codec-server":    "lifeboat codec-server --config config.yaml --ui-origin http://localhost:8233",
	"rbac":            "lifeboat rbac runbooks/examples\nlifeboat rbac runbooks/examples --context dr | kubectl --context dr apply -f -",
	"setup":           "lifeboat setup --config config.yaml",
	"version":         "lifeboat version\nlifeboat --version",
	"sign approve":    "lifeboat sign approve RUN shift-traffic --as alice",
	"sign reject":     "lifeboat sign reject RUN shift-traffic --as alice --reason \"primary is back\"",
	"sign ack":        "lifeboat sign ack RUN confirm-outage --as alice",
	"sign retry":      "lifeboat sign retry RUN restore-case-data --as alice",
	"sign skip":       "lifeboat sign skip RUN business-journey --as alice --reason \"checked by hand\"",
	"sign abort":      "lifeboat sign abort RUN --as alice --reason \"wrong region\"",
	"sign override":   "lifeboat sign override RUN backup-fresh --as alice --reason \"newest backup we have\"",
	"sign failover":   "lifeboat sign failover case-management-region-failover --as alice   # paste as the UI's Start Workflow input",
	"sign drill":      "lifeboat sign drill case-management-region-failover --as alice",
	"sign tabletop":   "lifeboat sign tabletop warm-standby-failover --as alice",
	"help":            "lifeboat help drill",
}

// addExamples sets each command's Example (indented as cobra's help prints
// it) from examples. cobra's completion command, added when the command
// line is executed, explains itself per shell.
func addExamples(c *cobra.Command) {
	if ex := examples[strings.TrimPrefix(c.CommandPath(), "lifeboat ")]; ex != "" {
		c.Example = "  " + strings.ReplaceAll(ex, "\n", "\n  ")
	}
	for _, sub := range c.Commands() {
		addExamples(sub)
	}
}
