package runbooks

import "strconv"

// CheckResult is one pre-flight check of a step: cheap and changing
// nothing, run before a failover or drill changes anything (phase 0).
type CheckResult struct {
	Step   string `json:"step"`
	Action string `json:"action"`
	// Name says what was checked, e.g. "may patch deployments/scale in case-management".
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
	// Fix says what to do when the check fails.
	Fix string `json:"fix,omitempty"`
	// Advisory: a failure is recorded and shown but does not stop the run
	// (a DR host the run itself creates may not resolve yet).
	Advisory bool `json:"advisory,omitempty"`
}

// ID names the check for lifeboat override RUN CHECK: STEP#N, N counting
// the step's checks from 1 in the order they ran.
func CheckID(step string, n int) string { return step + "#" + strconv.Itoa(n) }

// ArgsCheckName names the check of arguments that do not decode.
const ArgsCheckName = "arguments"

// ArgsCheck is the failed check of arguments that do not decode.
func ArgsCheck(err error) CheckResult {
	return Fail(ArgsCheckName, err.Error(), "fix the step's arguments (lifeboat validate)")
}

// Pass is a passed check.
func Pass(name, message string) CheckResult {
	return CheckResult{Name: name, OK: true, Message: message}
}

// Fail is a failed check with what to do.
func Fail(name, message, fix string) CheckResult {
	return CheckResult{Name: name, Message: message, Fix: fix}
}

// PrecheckInput is what the lifeboat.precheck activity checks: one step,
// with its arguments as it would run.
type PrecheckInput struct {
	StepInput
	Action string `json:"action"`
}

// PrecheckAnswer is one step's answer in the lifeboat.prechecks batch: its
// checks, or why they could not run.
type PrecheckAnswer struct {
	Results []CheckResult `json:"results,omitempty"`
	Error   string        `json:"error,omitempty"`
}
