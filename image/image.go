// Package image builds lifeboat's worker image as an OCI image layout, with
// no Docker daemon and no base image to pull (public registries may be out
// of reach): one layer holding the lifeboat binary (static, CGO off), the
// build machine's CA bundle (S3 and Temporal Cloud over TLS need it) and a
// passwd entry for the non-root user it runs as. go-containerregistry
// writes the layout; `crane push DIR REGISTRY/lifeboat:TAG` (or skopeo)
// puts it in a registry.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lifeboat-dr/lifeboat/devserver/gobuild"
)

// Binary is where the image holds lifeboat; its entrypoint.
const Binary = "/usr/local/bin/lifeboat"

// User is the numeric user and group the image runs as (not root).
const User = "65532:65532"

// Options say what to build.
type Options struct {
	// Module is the lifeboat checkout to build (its directory).
	Module string
	// Version is stamped into the binary (lifeboat version).
	Version string
	// Out is the OCI layout directory written (replaced).
	Out string
	// CABundle is the CA certificates file copied in (default: the build
	// machine's /etc/ssl/certs/ca-certificates.crt).
	CABundle string
}

// Build compiles lifeboat for linux/amd64 and writes the image to o.Out;
// it returns the image's digest.
func Build(ctx context.Context, o Options) (v1.Hash, error) {
	tmp, err := os.MkdirTemp("", "lifeboat-image-")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "lifeboat")
	args := append(append([]string{"build"}, gobuild.VCSFlags(o.Module)...), "-trimpath", "-ldflags", "-s -w -X main.version="+o.Version, "-o", bin, "./cmd/lifeboat")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = o.Module
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return v1.Hash{}, fmt.Errorf("building lifeboat for the image: %v\n%s", err, out)
	}
	if o.CABundle == "" {
		o.CABundle = "/etc/ssl/certs/ca-certificates.crt"
	}
	layer, err := rootLayer(bin, o.CABundle)
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return v1.Hash{}, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Config.Entrypoint = []string{Binary}
	cfg.Config.Cmd = []string{"worker"}
	cfg.Config.User = User
	cfg.Config.WorkingDir = "/"
	cfg.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	cfg.Config.Labels = map[string]string{
		"org.opencontainers.image.title":   "lifeboat",
		"org.opencontainers.image.version": o.Version,
		"org.opencontainers.image.source":  "https://github.com/lifeboat-dr/lifeboat",
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return v1.Hash{}, err
	}
	if err := os.RemoveAll(o.Out); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(o.Out, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "lifeboat:" + o.Version})); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// rootLayer is the image's one layer: the binary, the CA bundle, passwd.
func rootLayer(bin, caBundle string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0) // reproducible: the same binary gives the same layer
	for _, d := range []string{"etc/", "etc/ssl/", "etc/ssl/certs/", "tmp/", "usr/", "usr/local/", "usr/local/bin/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name, from string
		data       []byte
		mode       int64
	}{
		{name: Binary[1:], from: bin, mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", from: caBundle, mode: 0o644},
		{name: "etc/passwd", data: []byte("root:x:0:0:root:/root:/sbin/nologin\nlifeboat:x:65532:65532:lifeboat:/tmp:/sbin/nologin\n"), mode: 0o644},
		{name: "etc/group", data: []byte("root:x:0:\nlifeboat:x:65532:\n"), mode: 0o644},
	}
	for _, f := range files {
		data := f.data
		if f.from != "" {
			var err error
			if data, err = os.ReadFile(f.from); err != nil {
				return nil, fmt.Errorf("image: %w", err)
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}
