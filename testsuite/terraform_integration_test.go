//go:build integration

package testsuite_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/testsuite"
)

// TestTerraformRigAppliesOffline checks the rig's terraform (built from
// source) applies a terraform_data configuration with no provider download.
func TestTerraformRigAppliesOffline(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	tf, err := testsuite.EnsureTerraform(ctx, os.Stderr)
	require.NoError(t, err, "terraform must build (CI=%v)", testsuite.InCI())
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.tf"), []byte(`
variable "region" { type = string }
resource "terraform_data" "network" { input = "vpc-${var.region}" }
output "vpc" { value = terraform_data.network.output }
`), 0o644))
	cli := filepath.Join(dir, "cli.tfrc")
	require.NoError(t, os.WriteFile(cli, nil, 0o644))
	run := func(args ...string) string {
		cmd := exec.CommandContext(ctx, tf, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cli, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	assert.Contains(t, run("version"), "Terraform v1.5.7")
	run("init", "-input=false", "-no-color")
	run("apply", "-auto-approve", "-input=false", "-no-color", "-var", "region=ca-west-1")
	assert.Contains(t, run("output", "-raw", "vpc"), "vpc-ca-west-1")
}
