package main

import (
	"context"
	"fmt"
	"github.com/spf13/pflag"
)

// cmdTeardown runs the teardown of a drill that was terminated or whose
// worker was lost, from the runbook text recorded in its history.
func cmdTeardown(fs *pflag.FlagSet) runner {
	cf := addClientFlags(fs)
	as := fs.String("as", defaultUser(), "who requests the teardown")
	follow := fs.Bool("follow", false, "follow the teardown until it ends, then print its evidence")
	return func(ctx context.Context, pos []string) error {
		st, c, _, err := cf.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		run, err := st.Teardown(ctx, pos[0], *as)
		if err != nil {
			return err
		}
		fmt.Printf("started the teardown of %s\n  workflow: %s\n  status:   lifeboat status %s\n", pos[0], run.WorkflowID, run.WorkflowID)
		if !*follow {
			return nil
		}
		return followRun(ctx, st, run.WorkflowID, *cf.output)
	}
}
