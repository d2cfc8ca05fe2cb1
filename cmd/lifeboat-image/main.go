// Command lifeboat-image builds lifeboat's worker image into an OCI image
// layout (make image): no Docker daemon, no base image to pull.
//
//	go run ./cmd/lifeboat-image --out bin/image --version v1.2.3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/lifeboat-dr/lifeboat/image"
)

func main() {
	o := image.Options{Module: "."}
	flag.StringVar(&o.Out, "out", "bin/image", "OCI layout directory to write")
	flag.StringVar(&o.Version, "version", "dev", "version stamped into the binary")
	flag.StringVar(&o.CABundle, "ca-bundle", "", "CA certificates to include (default /etc/ssl/certs/ca-certificates.crt)")
	flag.Parse()
	digest, err := image.Build(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lifeboat-image:", err)
		os.Exit(1)
	}
	fmt.Printf("image lifeboat:%s %s written to %s (OCI layout)\npush it: crane push %s REGISTRY/lifeboat:%s\n", o.Version, digest, o.Out, o.Out, o.Version)
}
