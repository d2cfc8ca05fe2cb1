//go:build integration

package testsuite_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/activities/terraform"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/testsuite"
)

const networkTF = `
variable "region" { type = string }
variable "cidr" {
  type    = string
  default = "10.20.0.0/16"
}
variable "hold" {
  type    = number
  default = 0
}
resource "terraform_data" "vpc" {
  input = { region = var.region, cidr = var.cidr }
  provisioner "local-exec" { command = "sleep ${var.hold}" }
}
output "vpc_id" { value = "vpc-${var.region}" }
output "cidr" { value = terraform_data.vpc.output.cidr }
output "admin_password" {
  value     = "planted-tf-secret-91c2"
  sensitive = true
}
`

func TestTerraformActionsOnTheRig(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bin, err := testsuite.EnsureTerraform(ctx, os.Stderr)
	require.NoError(t, err, "terraform must build (CI=%v)", testsuite.InCI())
	base := t.TempDir()
	write := func(dir, body string) {
		require.NoError(t, os.MkdirAll(filepath.Join(base, dir), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(base, dir, "main.tf"), []byte(body), 0o644))
	}
	write("infra/dr-network", networkTF)
	write("infra/broken", `resource "terraform_data" "x" { inptu = 1 }`)
	a := &terraform.Actions{Binary: bin, BaseDir: base}
	step := func(args map[string]any) runbooks.StepInput {
		return runbooks.StepInput{StepID: "dr-network", Args: args}
	}

	t.Run("apply returns outputs, never sensitive values, and is idempotent", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			res, err := a.Apply(ctx, step(map[string]any{"dir": "infra/dr-network", "vars": map[string]any{"region": "ca-west-1"}}))
			require.NoError(t, err)
			assert.Equal(t, "vpc-ca-west-1", res.Outputs["vpc_id"])
			assert.Equal(t, "10.20.0.0/16", res.Outputs["cidr"])
			assert.Equal(t, "(sensitive)", res.Outputs["admin_password"])
		}
		require.NoError(t, os.WriteFile(filepath.Join(base, "infra/dr-network/dr.tfvars"), []byte("cidr = \"10.99.0.0/16\"\n"), 0o644))
		res, err := a.Apply(ctx, step(map[string]any{"dir": "infra/dr-network", "vars": map[string]any{"region": "ca-west-1"}, "varFiles": []any{"dr.tfvars"}}))
		require.NoError(t, err)
		assert.Equal(t, "10.99.0.0/16", res.Outputs["cidr"], "the var file is applied")
		res, err = a.Output(ctx, step(map[string]any{"dir": "infra/dr-network", "names": []any{"vpc_id"}}))
		require.NoError(t, err)
		assert.Equal(t, map[string]any{"vpc_id": "vpc-ca-west-1"}, res.Outputs)
		_, err = a.Output(ctx, step(map[string]any{"dir": "infra/dr-network", "names": []any{"nope"}}))
		assert.ErrorContains(t, err, "has no output nope")
	})
	t.Run("a missing variable is a non-retryable MissingVarError", func(t *testing.T) {
		_, err := a.Apply(ctx, step(map[string]any{"dir": "infra/dr-network"}))
		var mv *terraform.MissingVarError
		require.True(t, errors.As(err, &mv), "got %v", err)
		assert.Equal(t, "region", mv.Var)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "add it under with.vars")
	})
	t.Run("an invalid configuration is a non-retryable ConfigInvalidError", func(t *testing.T) {
		_, err := a.Apply(ctx, step(map[string]any{"dir": "infra/broken"}))
		var ci *terraform.ConfigInvalidError
		require.True(t, errors.As(err, &ci), "got %v", err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), `main.tf:1: Unsupported argument`)
	})
	t.Run("a held state lock is retryable, then the retry succeeds", func(t *testing.T) {
		// another terraform holds the lock while its provisioner sleeps
		holder := exec.CommandContext(ctx, bin, "apply", "-auto-approve", "-input=false", "-no-color", "-var", "region=ca-west-1", "-var", "hold=6", "-replace=terraform_data.vpc")
		holder.Dir = filepath.Join(base, "infra/dr-network")
		out, err := os.CreateTemp(t.TempDir(), "holder")
		require.NoError(t, err)
		holder.Stdout, holder.Stderr = out, out
		require.NoError(t, holder.Start())
		lockInfo := filepath.Join(base, "infra/dr-network", ".terraform.tfstate.lock.info")
		require.Eventually(t, func() bool { _, err := os.Stat(lockInfo); return err == nil }, 30*time.Second, 50*time.Millisecond)
		_, err = a.Apply(ctx, step(map[string]any{"dir": "infra/dr-network", "vars": map[string]any{"region": "ca-west-1"}}))
		var locked *terraform.StateLockedError
		require.True(t, errors.As(err, &locked), "got %v", err)
		assert.False(t, isNonRetryable(err))
		require.NoError(t, holder.Wait())
		_, err = a.Apply(ctx, step(map[string]any{"dir": "infra/dr-network", "vars": map[string]any{"region": "ca-west-1"}}))
		require.NoError(t, err)
	})
}
