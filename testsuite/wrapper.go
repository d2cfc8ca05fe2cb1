package testsuite

import (
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/lifeboat-dr/lifeboat/devserver/gobuild"
)

// wrappers hold the small modules that build the rig's real Kubernetes,
// Velero and Argo CD (k8srig, one module) and the Temporal server from the
// Go module proxy. Their files carry a .txt
// suffix so they stay out of lifeboat's own module; wrapperBuild.ensure
// writes them out under their real names.
//
//go:embed k8srig/go.mod.txt k8srig/go.sum.txt k8srig/tools.go.txt
//go:embed k8srig/etcd/main.go.txt k8srig/velero/main.go.txt k8srig/argocd/main.go.txt
//go:embed temporalrig/go.mod.txt temporalrig/go.sum.txt
var wrappers embed.FS

// wrapperBuild is one build of binaries from a wrapper module.
type wrapperBuild struct {
	wrapper string   // directory in wrappers: k8srig, temporalrig
	what    string   // for progress lines: "the Kubernetes control plane"
	version string   // cache key: binaries go to <cache>/<name>-<version>
	name    string   // cache directory prefix
	pkgs    []string // packages to build
	bins    []string // the binaries, one per package (a lone package's binary takes bins[0] as its name)
	ldflags string
	// named builds each package on its own, into its bins name (mains
	// whose directories share a name).
	named   bool
	minutes int // rough cold build time on 2 cores, for the progress line
	// extras are files of module extrasFrom (e.g. CRD manifests) copied
	// beside the binaries, so the rig needs no module cache at run time.
	extrasFrom string
	extras     []string
}

// ensure returns the cached binaries' paths in b.bins order, then the
// extras', building them first if any is missing.
func (b wrapperBuild) ensure(ctx context.Context, progress io.Writer) ([]string, error) {
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cache, b.name+"-"+b.version)
	var paths []string
	for _, f := range append(append([]string(nil), b.bins...), b.extras...) {
		paths = append(paths, filepath.Join(dir, filepath.Base(f)))
	}
	if allExist(paths...) {
		return paths, nil
	}
	if progress == nil {
		progress = io.Discard
	}
	// Two test processes (make test runs the end-to-end test beside the
	// others) build each part once: the second waits, then finds it.
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	unlock, err := gobuild.Lock(filepath.Join(cache, b.name+"-"+b.version+".lock"), b.what, progress)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if allExist(paths...) {
		return paths, nil
	}
	src := filepath.Join(cache, b.name+"-src-"+b.version)
	if err := writeWrapper(b.wrapper, src); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(cache, "."+b.name+"-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(progress, "building %s %s from the Go module proxy into %s (first run only; about %d min cold on 2 cores)…\n", b.what, b.version, dir, b.minutes)
	builds := [][]string{{tmp + string(filepath.Separator)}} // one binary per package, named after it
	builds[0] = append(builds[0], b.pkgs...)
	if b.named {
		builds = nil // each package's binary named by bins (two mains both called "server")
		for i, p := range b.pkgs {
			builds = append(builds, []string{filepath.Join(tmp, b.bins[i]), p})
		}
	} else if len(b.pkgs) == 1 {
		builds[0][0] = filepath.Join(tmp, b.bins[0]) // one package: the name is ours to give
	}
	env := append(os.Environ(), "GOFLAGS=-mod=mod")
	for _, build := range builds {
		// -s -w: no symbol table or DWARF — a shorter link for tools nobody debugs here.
		args := append([]string{"build", "-trimpath", "-ldflags", strings.TrimSpace("-s -w " + b.ldflags), "-o"}, build...)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = src
		cmd.Env = env
		if out, err := gobuild.RunWithProgress(cmd, b.what, progress); err != nil {
			return nil, fmt.Errorf("building %s failed: %w\n%s", b.what, err, gobuild.Tail(out, 3000))
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if len(b.extras) > 0 {
		list := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", b.extrasFrom)
		list.Dir = src
		list.Env = env
		modDir, err := list.Output()
		if err != nil {
			return nil, fmt.Errorf("finding module %s for %s: %w", b.extrasFrom, b.what, err)
		}
		for _, f := range b.extras {
			data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(modDir)), f))
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(tmp, filepath.Base(f)), data, 0o644); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range paths {
		if err := os.Rename(filepath.Join(tmp, filepath.Base(p)), p); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(progress, "built %s %s\n", b.what, b.version)
	return paths, nil
}

// writeWrapper writes an embedded wrapper module into dir under its real
// file names (without .txt).
func writeWrapper(wrapper, dir string) error {
	return fs.WalkDir(wrappers, wrapper, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := wrappers.ReadFile(path)
		if err != nil {
			return err
		}
		to := filepath.Join(dir, strings.TrimSuffix(strings.TrimPrefix(path, wrapper+"/"), ".txt"))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o644)
	})
}

func allExist(paths ...string) bool {
	for _, p := range paths {
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}
