// Command prebuild starts building the temporal CLI into the cache the moment
// make demo starts, while the demo itself compiles: it imports only the
// standard library and devserver/gobuild, so it compiles in seconds. The
// demo's own request for the CLI waits for this build (gobuild locks it).
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/lifeboat-dr/lifeboat/devserver/gobuild"
)

func main() {
	if _, err := gobuild.Temporal(context.Background(), io.Discard); err != nil {
		fmt.Fprintln(os.Stderr, "prebuild:", err)
		os.Exit(1)
	}
}
