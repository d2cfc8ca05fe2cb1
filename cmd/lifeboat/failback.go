package main

import (
	"context"
	"fmt"
	"github.com/spf13/pflag"
	"strings"
)

func cmdFailback(fs *pflag.FlagSet) runner {
	cf := addClientFlags(fs)
	as := fs.String("as", defaultUser(), "who requests the failback")
	reason := fs.String("reason", "", "why now (recorded in the evidence)")
	follow := fs.Bool("follow", false, "follow the failback until it ends, then print its evidence")
	return func(ctx context.Context, pos []string) error {
		if strings.TrimSpace(*reason) == "" {
			return fmt.Errorf("a failback needs --reason: the evidence must say why traffic moved back")
		}
		st, c, cfg, err := cf.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		run, err := st.Failback(ctx, pos[0], *as, *reason)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, startWait)
		err = st.AwaitStart(wctx, run.WorkflowID)
		cancel()
		if err != nil {
			return err
		}
		fmt.Printf("started the failback of %s (the runbook's spec.failback runs in restore order, data home before traffic; without one, the generated undo runs edge first)\n  workflow: %s\n  status:   lifeboat status %s\n", pos[0], run.WorkflowID, run.WorkflowID)
		if ui := uiLink(cfg.Temporal.Namespace, run.WorkflowID); ui != "" {
			fmt.Printf("  UI:       %s\n", ui)
		}
		if !*follow {
			return nil
		}
		return followRun(ctx, st, run.WorkflowID, *cf.output)
	}
}
