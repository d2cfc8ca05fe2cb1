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
// schema/lifeboat-v1.json); -o markdown, the field reference of
// docs/runbooks.md.
func cmdSchema(fs *pflag.FlagSet) runner {
	output := outputFlag(fs, "json", "markdown")
	return func(context.Context, []string) error {
		if *output == "markdown" {
			_, err := os.Stdout.WriteString(runbooks.FieldReference())
			return err
		}
		out, err := runbooks.JSONSchema(activities.Catalogue())
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(out)
		return err
	}
}
