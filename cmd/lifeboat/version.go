package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"
)

// version is set at build time (make build: -ldflags "-X main.version=…");
// without it the module version or the VCS revision Go stamped is used.
var version = ""

// cmdVersion prints lifeboat's version, commit, Go and Temporal SDK versions.
func cmdVersion(*pflag.FlagSet) runner {
	return func(context.Context, []string) error {
		fmt.Println(versionLine())
		return nil
	}
}

// versionLine is e.g. "lifeboat v0.5.0 (commit c6f142b, go1.26.0, temporal sdk v1.37.0)".
func versionLine() string {
	v, commit, sdk := version, "unknown", "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value[:min(len(s.Value), 12)]
			case "vcs.modified":
				if s.Value == "true" {
					commit += "+dirty"
				}
			}
		}
		for _, d := range info.Deps {
			if d.Path == "go.temporal.io/sdk" {
				sdk = d.Version
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return fmt.Sprintf("lifeboat %s (commit %s, %s, temporal sdk %s)", v, commit, runtime.Version(), sdk)
}
