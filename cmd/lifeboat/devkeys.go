package main

import (
	"sort"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/worker"
)

// demoKeys gives every person the catalog's runbooks name as an approver
// an SSH key in sig.KeyDir and writes the allowed_signers file that proves
// them, so the demo signs its decisions as production does.
func demoKeys(sig worker.SignaturesConfig, catalog []string) error {
	return starter.WriteDemoKeys(sig.KeyDir, sig.AllowedSigners, demoPeople(catalog))
}

// demoPeople are the approvers the catalog's runbooks name.
func demoPeople(catalog []string) []string {
	seen := map[string]bool{}
	if cat, _ := runbooks.LoadCatalog(catalog...); cat != nil {
		for _, name := range cat.Names() {
			entry, err := cat.Get(name)
			if err != nil {
				continue
			}
			for _, people := range entry.Runbook.Spec.Approvers {
				for _, p := range people {
					seen[p] = true
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
