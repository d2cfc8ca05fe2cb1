package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// PrecheckFunc checks, changing nothing, that a step could run as written:
// the target answers and lets the worker do what the step does, what the
// step reads exists. Each action that has one registers it in New.
type PrecheckFunc = func(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult

// HasPrecheck reports whether the action declares a pre-flight check.
func (r *Registry) HasPrecheck(action string) bool {
	_, ok := r.prechecks[action]
	return ok
}

// Precheck is the lifeboat.precheck activity: one step's pre-flight checks,
// with the arguments as the step would run them (drill mappings applied).
// An argument that uses an earlier step's output is only known when the
// step runs: the checks run on the others, and arguments that cannot be
// read without it are checked by the step itself. Messages are scrubbed of
// secrets.
func (r *Registry) Precheck(ctx context.Context, in runbooks.PrecheckInput) ([]runbooks.CheckResult, error) {
	fn, ok := r.prechecks[in.Action]
	if !ok {
		return nil, nil
	}
	out := fn(ctx, in.StepInput)
	if runbooks.HasRefs(in.Args) {
		for i, c := range out {
			if !c.OK && c.Name == runbooks.ArgsCheckName {
				out[i] = runbooks.Pass("arguments known when the step runs", "they use earlier steps' outputs: the step checks them itself")
			}
		}
	}
	for i := range out {
		out[i].Step, out[i].Action = in.StepID, in.Action
		out[i].Message, out[i].Fix = r.secrets.Scrub(out[i].Message), r.secrets.Scrub(out[i].Fix)
	}
	return out, nil
}

// SetPrecheck declares (or replaces) an action's pre-flight check: for
// registries built with NewWithFuncs, whose actions are fakes.
func (r *Registry) SetPrecheck(action string, fn PrecheckFunc) *Registry {
	r.prechecks[action] = fn
	return r
}

// precheckParallelism bounds how many steps a batch checks at once: a
// thousand-step runbook must not open a thousand connections to one API
// server (one activity per step was bounded by the worker's slots).
const precheckParallelism = 16

// precheckMargin is how long before the activity's own deadline a batch
// stops waiting for its checks, so that the steps checked in time are
// answered instead of the whole batch timing out.
const precheckMargin = 15 * time.Second

// Prechecks is the lifeboat.prechecks activity: the pre-flight checks of a
// run's steps in one activity (phase 0 is one task for Temporal, not one
// per step), each step's checks as Precheck runs them, up to
// precheckParallelism at once. The batch answers before its deadline
// (precheckMargin): a step whose checks had not answered by then, or
// panicked, has an Error instead of results; the others keep theirs.
func (r *Registry) Prechecks(ctx context.Context, ins []runbooks.PrecheckInput) ([]runbooks.PrecheckAnswer, error) {
	cctx, cancel := beforeDeadline(ctx)
	defer cancel()
	started := time.Now()
	var mu sync.Mutex
	out := make([]runbooks.PrecheckAnswer, len(ins))
	answered := make([]bool, len(ins))
	done := make(chan struct{})
	slots := make(chan struct{}, precheckParallelism)
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-cctx.Done():
				return
			}
			var a runbooks.PrecheckAnswer
			func() {
				defer func() {
					if p := recover(); p != nil {
						a = runbooks.PrecheckAnswer{Error: r.secrets.Redact(fmt.Sprintf("the check of %s panicked: %v", in.Action, p))}
					}
				}()
				results, err := r.Precheck(cctx, in)
				a.Results = results
				if err != nil {
					a.Error = r.secrets.Redact(err.Error())
				}
			}()
			mu.Lock()
			defer mu.Unlock()
			if cctx.Err() == nil { // an answer after the cut-off is not one: the check may have given up half-way
				out[i], answered[i] = a, true
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-cctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range out {
		if !answered[i] {
			out[i] = runbooks.PrecheckAnswer{Error: fmt.Sprintf("the checks of %s did not answer within %s", ins[i].Action, time.Since(started).Round(time.Second))}
		}
	}
	return out, nil
}

// beforeDeadline is ctx ending precheckMargin (at most a quarter of the
// time left) before its own deadline, or ctx itself when it has none.
func beforeDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline.Add(-min(precheckMargin, time.Until(deadline)/4)))
}
