//go:build integration

package testsuite_test

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/image"

	"github.com/lifeboat-dr/lifeboat/devserver/gobuild"
)

// builtImage is the worker image make image's builder writes (its layout
// and digest), built once for the tests that use it.
var builtImage = sync.OnceValues(func() (layoutAndDigest, error) {
	dir, err := os.MkdirTemp(binDir, "image") // removed with binDir after the tests
	if err != nil {
		return layoutAndDigest{}, err
	}
	out := filepath.Join(dir, "image")
	digest, err := image.Build(context.Background(), image.Options{Module: "..", Version: "v9.9.9-test", Out: out})
	return layoutAndDigest{out, digest}, err
})

type layoutAndDigest struct {
	dir    string
	digest v1.Hash
}

// testImage returns the built image's layout and image.
func testImage(t *testing.T) (layout.Path, v1.Image) {
	built, err := builtImage()
	require.NoError(t, err)
	p, err := layout.FromPath(built.dir)
	require.NoError(t, err)
	img, err := p.Image(built.digest)
	require.NoError(t, err)
	return p, img
}

// imageBinary is the lifeboat binary taken out of the image's layer, and
// the names of every file in it.
func imageBinary(t *testing.T) (string, map[string]bool) {
	_, img := testImage(t)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	rc, err := layers[0].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	bin := filepath.Join(t.TempDir(), "lifeboat")
	seen := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		seen[h.Name] = true
		if "/"+h.Name == image.Binary {
			f, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
			require.NoError(t, err)
			_, err = io.Copy(f, tr)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}
	}
	require.True(t, seen[strings.TrimPrefix(image.Binary, "/")], "no %s in the image", image.Binary)
	return bin, seen
}

// TestTheWorkerImage: make image's builder writes a valid OCI layout whose
// one image runs lifeboat as a non-root user, and whose entrypoint, taken
// out of the layer, runs `lifeboat version`.
func TestTheWorkerImage(t *testing.T) {
	t.Parallel()
	p, img := testImage(t)
	idx, err := p.ImageIndex()
	require.NoError(t, err)
	require.NoError(t, validate.Index(idx), "a valid OCI layout")
	require.NoError(t, validate.Image(img))
	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, []string{image.Binary}, cfg.Config.Entrypoint)
	assert.Equal(t, []string{"worker"}, cfg.Config.Cmd)
	assert.Equal(t, image.User, cfg.Config.User, "not root")
	assert.Equal(t, "linux", cfg.OS)

	bin, seen := imageBinary(t)
	assert.True(t, seen["etc/ssl/certs/ca-certificates.crt"], "the CA bundle TLS needs")
	version, err := exec.Command(bin, "version").CombinedOutput()
	require.NoError(t, err, string(version))
	assert.Contains(t, string(version), "v9.9.9-test")
	if gobuild.VCSFlags("..") != nil { // a checkout git can read
		assert.NotContains(t, string(version), "commit unknown", "a build from a git checkout names its commit, whatever GOFLAGS says")
	}
}
