package main

import (
	"github.com/spf13/pflag"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/worker"
)

// loadConfig reads the config file (flag, LIFEBOAT_CONFIG, or ./lifeboat.yaml
// when present) and the environment.
func loadConfig(path string) (worker.Config, error) {
	if path == "" {
		if _, err := os.Stat("lifeboat.yaml"); err == nil {
			path = "lifeboat.yaml"
		}
	}
	return worker.Load(path, os.Getenv)
}

// clientFlags are the flags of every command that talks to Temporal.
type clientFlags struct {
	config *string
	output *string
}

// addClientFlags registers --config and -o/--output (text or json, or the
// outputs given, the first the default).
func addClientFlags(fs *pflag.FlagSet, outputs ...string) clientFlags {
	if len(outputs) == 0 {
		outputs = []string{"text", "json"}
	}
	return clientFlags{
		config: &configPath,
		output: outputFlag(fs, outputs...),
	}
}

// connect reads the config, dials Temporal and returns a starter.
func (f clientFlags) connect() (*starter.Starter, client.Client, worker.Config, error) {
	cfg, err := loadConfig(*f.config)
	if err != nil {
		return nil, nil, cfg, err
	}
	st, c, err := dial(cfg)
	return st, c, cfg, err
}

// dial connects to the Temporal of an already loaded config.
func dial(cfg worker.Config) (*starter.Starter, client.Client, error) {
	var dc converter.DataConverter // the client's (the codec's when enabled), for payloads the starter decodes itself
	c, err := worker.Dial(cfg, func(o *client.Options) { dc = o.DataConverter })
	if err != nil {
		return nil, nil, err
	}
	return starter.New(c, cfg.Temporal.TaskQueue).WithDataConverter(dc).WithKeys(keyFinder(cfg.Signatures)), c, nil
}

// isHistoryFile says whether a RUN argument names an exported history: a file
// that exists, or any name ending in .json (a missing one is then reported as
// a missing file, not as an unknown run).
func isHistoryFile(name string) bool {
	_, err := os.Stat(name)
	return err == nil || strings.HasSuffix(name, ".json")
}
