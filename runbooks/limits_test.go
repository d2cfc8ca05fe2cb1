package runbooks_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// wide is a runbook of n http.check steps in one layer, padded with a
// comment of pad bytes.
func wide(n, pad int) string {
	var b strings.Builder
	b.WriteString(header + "  layers:\n    workloads:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "      - {id: check-%04d, action: http.check, with: {url: \"http://svc-%04d.dr.example.internal/health\"}}\n", i, i)
	}
	b.WriteString("# " + strings.Repeat("x", pad) + "\n")
	return b.String()
}

func TestTheStepLimitIsEnforcedWithAClearMessage(t *testing.T) {
	assert.Empty(t, validate(t, wide(runbooks.MaxSteps, 0)).Errors(), "a runbook at the limit is valid")
	ps := validate(t, wide(runbooks.MaxSteps+1, 0)).Errors()
	require.Len(t, ps, 1, ps.Error())
	assert.Equal(t, "spec.layers", ps[0].Path)
	assert.Contains(t, ps[0].Message, "1001 steps: a runbook may hold at most 1000")
	assert.Contains(t, ps[0].Message, "split it")
}
