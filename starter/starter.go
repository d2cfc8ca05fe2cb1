// Package starter is the client side of lifeboat, used by the CLI and tests:
// start runs with readable ids, send operator messages, read status and evidence.
package starter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// Starter talks to RestoreWorkflow runs through a Temporal client.
type Starter struct {
	c         client.Client
	taskQueue string
	dc        converter.DataConverter
	keys      KeyFinder
}

// New returns a Starter that starts runs on taskQueue.
func New(c client.Client, taskQueue string) *Starter { return &Starter{c: c, taskQueue: taskQueue} }

// WithDataConverter sets the data converter the client uses (an encrypting
// codec, say), so evidence decoded from raw history reads the same.
func (s *Starter) WithDataConverter(dc converter.DataConverter) *Starter {
	s.dc = dc
	return s
}

// DataConverter is the converter the client decodes payloads with.
func (s *Starter) DataConverter() converter.DataConverter {
	if s.dc == nil {
		return converter.GetDefaultDataConverter()
	}
	return s.dc
}

// Run identifies a started run.
type Run struct {
	WorkflowID string
	RunID      string
}

// RefusedError is an operator message the run refused (its validator said no);
// the run is unchanged.
type RefusedError struct {
	Message string
}

func (e *RefusedError) Error() string { return "refused: " + e.Message }

// NewWorkflowID returns a readable, unique id: lifeboat-<runbook>-<mode>-<6 hex>.
func NewWorkflowID(runbook, mode string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := runbook
	if name == "" {
		name = "inline"
	}
	return fmt.Sprintf("lifeboat-%s-%s-%s", name, mode, hex.EncodeToString(b))
}

// Start starts a run. The request is checked first so a typo fails here, not in the worker.
func (s *Starter) Start(ctx context.Context, req workflows.Request) (Run, error) {
	if err := req.Check(); err != nil {
		return Run{}, err
	}
	name := req.RunbookName()
	id := NewWorkflowID(name, req.ModeLabel())
	req, err := SignStart(s.keys, id, req)
	if err != nil {
		return Run{}, fmt.Errorf("signing the start as %s: %w", req.RequestedBy, err)
	}
	summary := fmt.Sprintf("%s of %s", req.Mode, name)
	if req.Reason != "" {
		summary += ": " + req.Reason
	}
	opts := client.StartWorkflowOptions{
		ID: id, TaskQueue: s.taskQueue, StaticSummary: summary,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SARunbook.ValueSet(name), workflows.SAMode.ValueSet(req.ModeLabel()),
			workflows.SAState.ValueSet(workflows.RunResolving)),
	}
	we, err := s.c.ExecuteWorkflow(ctx, opts, req.WorkflowType(), req)
	if err != nil {
		return Run{}, fmt.Errorf("starting %s: %w", id, err)
	}
	return Run{WorkflowID: we.GetID(), RunID: we.GetRunID()}, nil
}

// Update sends the operator update name (workflows.Msg*), signed when the
// sender has a key (WithKeys), and waits for the reply; a refusal by the
// run's validator is a *RefusedError.
func (s *Starter) Update(ctx context.Context, workflowID, name string, arg any) (workflows.Reply, error) {
	arg, err := s.signed(ctx, workflowID, arg)
	if err != nil {
		return workflows.Reply{}, err
	}
	h, err := s.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateName: name, Args: []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var reply workflows.Reply
	if err == nil {
		err = h.Get(ctx, &reply)
	}
	if err != nil {
		return reply, explain(workflowID, err)
	}
	return reply, nil
}

// explain turns client errors into messages an operator can act on.
func explain(workflowID string, err error) error {
	if err == nil {
		return nil
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return &RefusedError{Message: ae.Error()}
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) || strings.Contains(err.Error(), "workflow execution already completed") {
		return fmt.Errorf("run %s is not running (finished, or the id is wrong: `lifeboat evidence %s` shows a finished run): %w", workflowID, workflowID, err)
	}
	return err
}

// Approve approves a gated step.
func (s *Starter) Approve(ctx context.Context, id string, m workflows.Approve) (workflows.Reply, error) {
	return s.Update(ctx, id, workflows.MsgApprove, m)
}

// Reject rejects a gated step.
func (s *Starter) Reject(ctx context.Context, id string, m workflows.Reject) (workflows.Reply, error) {
	return s.Update(ctx, id, workflows.MsgReject, m)
}

// Ack acknowledges a manual or tabletop step.
func (s *Starter) Ack(ctx context.Context, id string, m workflows.Ack) (workflows.Reply, error) {
	return s.Update(ctx, id, workflows.MsgAck, m)
}

// Retry retries a paused step.
func (s *Starter) Retry(ctx context.Context, id string, m workflows.Retry) (workflows.Reply, error) {
	return s.Update(ctx, id, workflows.MsgRetry, m)
}

// Skip skips a step.
func (s *Starter) Skip(ctx context.Context, id string, m workflows.Skip) (workflows.Reply, error) {
	return s.Update(ctx, id, workflows.MsgSkip, m)
}

// Abort aborts the run.
func (s *Starter) Abort(ctx context.Context, id string, m workflows.Abort) (workflows.Reply, error) {
	return s.Update(ctx, id, workflows.MsgAbort, m)
}

// Note adds a note.
func (s *Starter) Note(ctx context.Context, id string, m workflows.Note) (workflows.Reply, error) {
	return s.Update(ctx, id, workflows.MsgNote, m)
}

// Signal sends the signal mirror of an operator message (as the Temporal UI does).
// It is signed as Update's is.
func (s *Starter) Signal(ctx context.Context, id, name string, arg any) error {
	arg, err := s.signed(ctx, id, arg)
	if err != nil {
		return err
	}
	return explain(id, s.c.SignalWorkflow(ctx, id, "", name, arg))
}

// signed signs arg when it is an operator message without a signature,
// for the run that checks it (Route): sent to a plan, a decision on a
// member's step is signed for the member's run, which the plan forwards it to.
func (s *Starter) signed(ctx context.Context, id string, arg any) (any, error) {
	m, ok := arg.(workflows.Signable)
	if !ok || m.Proof().Signature != "" {
		return arg, nil
	}
	return s.SignMessage(ctx, s.Route(ctx, id, workflows.StepOf(m)), m)
}

// Status queries a run's status.
// A run that ended before it could start returns a *StartFailedError with
// the reason and state refused (the worker refused it) or failed (it was
// terminated while resolving, or the worker could not answer).
func (s *Starter) Status(ctx context.Context, id string) (workflows.Status, error) {
	var st workflows.Status
	v, err := s.c.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
	if err == nil {
		err = v.Get(&st)
	}
	if err == nil && st.State != workflows.RunResolving {
		return st, nil
	}
	if failed := s.startFailure(ctx, id); failed != nil {
		st.WorkflowID, st.State, st.Finished = id, workflows.RunFailed, true
		if failed.Refused {
			st.State = workflows.RunRefused
		}
		return st, failed
	}
	if _, derr := s.c.DescribeWorkflowExecution(ctx, id, ""); isNotFound(derr) {
		return st, fmt.Errorf("no such run: %s (lifeboat evidence list shows finished runs; <TAB> after lifeboat status completes open ones)", id)
	}
	return st, explain(id, err)
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// Wait blocks until the run ends and returns its evidence. A run that ended
// as a failed workflow because its request asked for it
// (Request.FailIfUnsuccessful) still returns its evidence, without error; a
// run the worker refused at its start returns *StartFailedError.
func (s *Starter) Wait(ctx context.Context, id string) (record.Evidence, error) {
	var ev record.Evidence
	err := s.c.GetWorkflow(ctx, id, "").Get(ctx, &ev)
	if ok, derr := unsuccessfulEvidence(err, &ev); ok {
		return ev, derr
	}
	if why, ok := refusal(err); ok {
		return ev, &StartFailedError{WorkflowID: id, Reason: why, Refused: true}
	}
	return ev, err
}

// unsuccessfulEvidence decodes the evidence carried by an ErrUnsuccessful failure.
func unsuccessfulEvidence(err error, ev *record.Evidence) (bool, error) {
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != workflows.ErrUnsuccessful || !ae.HasDetails() {
		return false, nil
	}
	return true, ae.Details(ev)
}

// Route is the run an operator message for step belongs to: id itself,
// unless id is a recovery plan's run and step is not one of its members but
// a step one of its running members waits on — then that member's run, so
// the message is checked (and signed) for the run that owns the step.
func (s *Starter) Route(ctx context.Context, id, step string) string {
	if step == "" {
		return id
	}
	st, err := s.Status(ctx, id)
	if err != nil || !st.Plan {
		return id
	}
	for _, ss := range st.Steps {
		if ss.ID == step {
			return id
		}
	}
	for _, p := range st.Pending {
		if p.Step == step && p.MemberRun != "" {
			return p.MemberRun
		}
	}
	return id
}
