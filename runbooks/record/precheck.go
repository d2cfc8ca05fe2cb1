package record

import "github.com/lifeboat-dr/lifeboat/runbooks"

// PrecheckRecord is one check in the evidence, with its override if an
// operator let the run go on despite it.
type PrecheckRecord struct {
	ID string `json:"id"`
	runbooks.CheckResult
	Override *EventRecord `json:"override,omitempty"`
}
