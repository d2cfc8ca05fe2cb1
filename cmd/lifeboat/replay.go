package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/spf13/pflag"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// cmdReplay replays recorded histories (files or runs on the server) against
// this build's workflow code and says whether it can still carry each one.
func cmdReplay(fs *pflag.FlagSet) runner {
	cf := addClientFlags(fs)
	return func(ctx context.Context, pos []string) error {
		cfg, err := loadConfig(*cf.config)
		if err != nil {
			return err
		}
		dc, err := cfg.DataConverter() // an encrypted history needs the keys
		if err != nil {
			return err
		}
		// The server is dialled on the first RUN that is not a history file.
		var st *starter.Starter
		var c client.Client
		defer func() {
			if c != nil {
				c.Close()
			}
		}()
		load := func(name string) (*historypb.History, error) {
			if isHistoryFile(name) {
				return starter.LoadHistoryFile(name)
			}
			if st == nil {
				var err error
				if st, c, err = dial(cfg); err != nil {
					return nil, err
				}
			}
			return st.History(ctx, name)
		}
		failed := 0
		for _, name := range pos {
			h, err := load(name)
			if err != nil {
				return err
			}
			err = starter.Replay(h, dc)
			var ie *starter.IncompatibleError
			switch {
			case err == nil:
				fmt.Printf("ok    %s: today's code replays all %d events (%s)\n", name, len(h.Events), describeRun(h, dc))
			case errors.As(err, &ie):
				failed++
				fmt.Printf("FAIL  %s (%s): %v\n", name, describeRun(h, dc), ie)
				fmt.Println("      today's workflow code cannot carry this run: a change to what the workflow schedules must go behind workflow.GetVersion (docs/tests.md: Changing the workflow)")
			default:
				return err
			}
		}
		if failed > 0 {
			return exitError{1}
		}
		return nil
	}
}

// describeRun is "drill of NAME" from the history's start event.
func describeRun(h *historypb.History, dc converter.DataConverter) string {
	for _, e := range h.GetEvents() {
		a := e.GetWorkflowExecutionStartedEventAttributes()
		if a == nil {
			continue
		}
		var req workflows.Request
		if err := dc.FromPayloads(a.GetInput(), &req); err != nil || req.Check() != nil {
			return a.GetWorkflowType().GetName()
		}
		name := req.RunbookName()
		switch {
		case name == "":
			name = "an inline runbook"
		case req.Runbook == "":
			name += " (inline text)"
		}
		return fmt.Sprintf("%s of %s, started %s", req.Mode, name, e.GetEventTime().AsTime().UTC().Format("2006-01-02 15:04"))
	}
	return "no start event"
}
