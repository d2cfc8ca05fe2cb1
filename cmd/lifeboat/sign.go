package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/spf13/pflag"
	"os"
	"strings"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// cmdSign prints a signed message or start for the Temporal UI: the JSON on
// stdout (to paste into Send a Signal, or Start Workflow's input), where to
// paste it on stderr.
//
//	lifeboat sign approve RUN STEP --as bob [--comment TEXT]
//	lifeboat sign failover RUNBOOK --as alice --reason TEXT
func cmdSign(verb string) func(*pflag.FlagSet) runner {
	return func(fs *pflag.FlagSet) runner {
		cf := addClientFlags(fs)
		as := fs.String("as", defaultUser(), "who signs (their key: LIFEBOAT_SIGNING_KEY, signatures.keyDir, or the ssh-agent)")
		comment := fs.String("comment", "", "comment recorded with the decision")
		reason := fs.String("reason", "", "reason (required for reject, skip, abort and failover)")
		m, isMessage := messages[verb]
		isStart := !isMessage
		return func(ctx context.Context, pos []string) error {
			if strings.TrimSpace(*as) == "" {
				return fmt.Errorf("lifeboat sign: say who signs with --as NAME")
			}
			cfg, err := loadConfig(*cf.config)
			if err != nil {
				return err
			}
			keys := keyFinder(cfg.Signatures)
			if key, err := keys(*as); err != nil {
				return err
			} else if key == nil {
				return fmt.Errorf("lifeboat sign: no signing key for %s: set LIFEBOAT_SIGNING_KEY to %s's private key, or load it into ssh-agent", *as, *as)
			}
			if isStart {
				return printSignedStart(verb, pos[0], isPlanName(cfg.Catalog, pos[0]), *as, *reason, cfg.Temporal.TaskQueue, keys)
			}
			st, c, err := dial(cfg)
			if err != nil {
				return err
			}
			defer c.Close()
			msg := m.build(pos, *as, *comment, *reason)
			// A step a plan's member waits on is the member's decision: signed
			// for the member's run, which checks it (pasted on the plan's page,
			// the plan forwards it there).
			run := st.Route(ctx, pos[0], workflows.StepOf(msg))
			signed, err := st.SignMessage(ctx, run, msg)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "In the Temporal UI, run %s → Send a Signal: name %q, input (within %s, then the signature is stale):\n", run, verb, workflows.SignatureWindow)
			return printCompact(signed)
		}
	}
}

func printSignedStart(mode, name string, plan bool, as, reason, taskQueue string, keys starter.KeyFinder) error {
	if mode == workflows.ModeFailover && strings.TrimSpace(reason) == "" {
		return fmt.Errorf("a failover needs --reason: the evidence must say why traffic moved")
	}
	id := starter.NewWorkflowID(name, mode)
	req := workflows.Request{Runbook: name, Mode: mode, Reason: reason, RequestedBy: as}
	if plan {
		req.Runbook, req.Plan = "", name
	}
	req, err := starter.SignStart(keys, id, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "In the Temporal UI → Start Workflow (within %s): Workflow ID %s, Task Queue %s, Workflow Type %s, Input:\n",
		workflows.SignatureWindow, id, taskQueue, req.WorkflowType())
	return printCompact(req)
}

// printCompact prints v as one line of JSON: what a dialog's input box takes.
func printCompact(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}
