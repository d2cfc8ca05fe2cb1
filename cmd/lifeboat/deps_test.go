package main

import (
	"os/exec"
	"strings"
	"testing"
)

func deps(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

// Product code never imports the test rig: the lifeboat binary's
// dependencies hold no testsuite package.
func TestTheCLIDoesNotImportTheTestRig(t *testing.T) {
	for _, pkg := range deps(t) {
		if strings.Contains(pkg, "/lifeboat/testsuite") {
			t.Errorf("cmd/lifeboat depends on %s", pkg)
		}
	}
}

// A cold `make demo` waits for bin/lifeboat: it compiles only the parts of
// its SDKs it calls. Each package below pulls in a hundred more (every
// Cloudflare product; every API group's client, informer and lister) and
// doubled the cold build (2m14s → 4m30s on 2 cores).
func TestTheCLICompilesOnlyTheSDKPartsItCalls(t *testing.T) {
	heavy := map[string]string{
		"github.com/cloudflare/cloudflare-go/v6": "use the product packages (dns, zones, load_balancers, user) as activities/cloudflare/api.go does",
		"k8s.io/client-go/kubernetes":            "use the typed client of the API group (kube.Typed)",
		"k8s.io/client-go/informers":             "build the informer from a cache.ListWatch (kube.informerFor), not dynamicinformer",
	}
	for _, pkg := range deps(t) {
		if fix, ok := heavy[pkg]; ok {
			t.Errorf("cmd/lifeboat depends on %s: %s", pkg, fix)
		}
	}
}
