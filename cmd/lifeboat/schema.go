package main

import (
	"context"
	"os"

	"github.com/spf13/pflag"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// cmdSchema prints the JSON Schema of lifeboat/v1 documents with this
// build's action catalogue (the repository publishes it as
// schema/lifeboat-v1.json).
func cmdSchema(*pflag.FlagSet) runner {
	return func(context.Context, []string) error {
		out, err := runbooks.JSONSchema(activities.Catalogue())
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(out)
		return err
	}
}
