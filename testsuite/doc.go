// Package testsuite is lifeboat's local rig: the real Temporal dev server (the
// temporal CLI built from source into the user cache, keyed by version) and,
// as the rig grows, the other real parts and emulators. `lifeboat dev`,
// `make demo` and the integration tests all start their parts from here.
package testsuite
