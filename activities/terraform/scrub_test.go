package terraform

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Terraform's diagnostics show the values an expression used and the
// source line: neither may reach an error message (history, evidence).
func TestTerraformErrorsCarryNoValues(t *testing.T) {
	stderr := `
Error: Invalid function argument

  on main.tf line 5, in resource "local_file" "x":
   5:   content = "${var.db_password}-${file("planted-source-secret")}"
    ├────────────────
    │ while calling file(path)
    │ var.db_password is "planted-tf-var-9c1d"

Invalid value for "v" parameter: cannot convert "planted-tf-var-9c1d" to
number; given string must be a decimal representation of a number.
`
	err := classify("infra/dr", errors.New(stderr))
	assert.NotContains(t, err.Error(), "planted-tf-var-9c1d")
	assert.NotContains(t, err.Error(), `content = `)
	assert.Contains(t, err.Error(), "Invalid function argument")
	assert.Contains(t, err.Error(), `on main.tf line 5, in resource "local_file" "x"`)
	assert.Contains(t, err.Error(), `cannot convert "…" to number`)
}
