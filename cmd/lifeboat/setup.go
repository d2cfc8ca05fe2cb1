package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/lifeboat-dr/lifeboat/starter"
)

// cmdSetup prepares a namespace of a self-hosted Temporal cluster for
// lifeboat: its search attributes (the status columns of the UI's list and
// the queries status and evidence list make). Once per namespace; the dev
// server needs none.
func cmdSetup(fset *pflag.FlagSet) runner {
	cf := addClientFlags(fset)
	return func(ctx context.Context, _ []string) error {
		_, c, cfg, err := cf.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		added, err := starter.RegisterSearchAttributes(ctx, c, cfg.Temporal.Namespace)
		if err != nil {
			return err
		}
		if len(added) == 0 {
			fmt.Printf("namespace %s already has lifeboat's search attributes\n", cfg.Temporal.Namespace)
			return nil
		}
		fmt.Printf("namespace %s: added search attributes %s\n", cfg.Temporal.Namespace, strings.Join(added, ", "))
		return nil
	}
}
