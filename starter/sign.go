package starter

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// KeyFinder returns the SSH key that signs for a person, or nil when the
// caller has none (the message then goes unsigned and is recorded as
// unproven, or refused where the worker requires signatures).
type KeyFinder func(by string) (ssh.Signer, error)

// WithKeys makes the starter sign every start and operator message with the
// key find returns for its sender.
func (s *Starter) WithKeys(find KeyFinder) *Starter {
	s.keys = find
	return s
}

// Identity is the Temporal client identity this process reports (the SDK's
// default): recorded beside an unproven name.
func Identity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s", os.Getpid(), host)
}

// SignStart signs req (to be started as workflowID) with the key keys
// finds for its requester; a requester without a key leaves it unsigned.
func SignStart(keys KeyFinder, workflowID string, req workflows.Request) (workflows.Request, error) {
	req.Client = Identity()
	key, err := keyFor(keys, req.RequestedBy)
	if key == nil || err != nil {
		return req, err
	}
	at := signingTime()
	req.SignedAt = &at
	req.Signature, err = proof.SignDecision(workflows.StartDecision(workflowID, req), key)
	return req, err
}

// SignMessage signs m for the current run of workflowID (whose run id it
// looks up: a signature holds for one run only); a sender without a key
// leaves it unsigned.
func (s *Starter) SignMessage(ctx context.Context, workflowID string, m workflows.Signable) (workflows.Signable, error) {
	signed := workflows.Signed{Client: Identity()}
	key, err := keyFor(s.keys, m.Actor())
	if err != nil {
		return nil, err
	}
	if key != nil {
		desc, err := s.c.DescribeWorkflowExecution(ctx, workflowID, "")
		if err != nil {
			return nil, explain(workflowID, err)
		}
		at := signingTime()
		signed.SignedAt = &at
		// The first execution's run id: a Temporal reset keeps it (the
		// run checks against it), and for a run never reset it is the run's.
		info := desc.GetWorkflowExecutionInfo()
		d := workflows.MessageDecision(workflowID, cmp.Or(info.GetFirstRunId(), info.GetExecution().GetRunId()), m, at)
		if signed.Signature, err = proof.SignDecision(d, key); err != nil {
			return nil, err
		}
	}
	return workflows.WithSigned(m, signed), nil
}

func keyFor(keys KeyFinder, by string) (ssh.Signer, error) {
	if keys == nil || by == "" {
		return nil, nil
	}
	return keys(by)
}

// signingTime is now, to the second: what the statement says.
func signingTime() time.Time { return time.Now().UTC().Truncate(time.Second) }
