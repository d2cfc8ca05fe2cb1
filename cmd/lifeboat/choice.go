package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// choice is a flag value that must be one of its choices: any other is
// refused when the command line is parsed (a usage error naming them),
// never read as the default.
type choice struct {
	value   string
	choices []string
}

func (c *choice) String() string { return c.value }

// Set implements pflag.Value.
func (c *choice) Set(s string) error {
	if !slices.Contains(c.choices, s) {
		return fmt.Errorf("use %s", strings.Join(c.choices, " or "))
	}
	c.value = s
	return nil
}

// Type implements pflag.Value.
func (c *choice) Type() string { return "string" }

// outputFlag registers -o/--output, one of choices (the first is the
// default), as kubectl's and the temporal CLI's.
func outputFlag(fs *pflag.FlagSet, choices ...string) *string {
	c := &choice{value: choices[0], choices: choices}
	fs.VarP(c, "output", "o", strings.Join(choices, " or "))
	return &c.value
}
