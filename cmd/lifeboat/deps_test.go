package main

import (
	"os/exec"
	"strings"
	"testing"
)

// Product code never imports the test rig: the lifeboat binary's
// dependencies hold no testsuite package.
func TestTheCLIDoesNotImportTheTestRig(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "/lifeboat/testsuite") {
			t.Errorf("cmd/lifeboat depends on %s", pkg)
		}
	}
}
