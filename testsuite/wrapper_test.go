package testsuite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The wrapper modules come out under their real names, nested files too,
// each declaring its own module (never lifeboat's).
func TestWrappersWriteOutAsModules(t *testing.T) {
	for wrapper, files := range map[string][]string{
		"k8srig":      {"go.mod", "go.sum", "tools.go", "etcd/main.go", "velero/main.go", "argocd/main.go"},
		"temporalrig": {"go.mod", "go.sum"},
	} {
		dir := t.TempDir()
		if err := writeWrapper(wrapper, dir); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %v", wrapper, err)
			}
		}
		mod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
		if !strings.Contains(string(mod), "module github.com/lifeboat-dr/lifeboat/testsuite/"+wrapper+"\n") {
			t.Errorf("%s/go.mod declares another module:\n%s", wrapper, mod)
		}
	}
}
