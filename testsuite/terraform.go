package testsuite

import (
	"context"
	"io"
)

// TerraformVersion is the terraform built for the rig (MPL-licensed 1.5.x).
const TerraformVersion = "v1.5.7"

// EnsureTerraform returns the path of the cached terraform binary, building it first if needed.
func EnsureTerraform(ctx context.Context, progress io.Writer) (string, error) {
	return GoInstall(ctx, "terraform", "github.com/hashicorp/terraform", TerraformVersion, progress)
}
