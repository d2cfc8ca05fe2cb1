package postgres

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// A pre-check reads each action's own arguments: verify's checks are not
// unknown fields, and the connection comes out of them.
func TestPrechecksDecodeEachActionsOwnArguments(t *testing.T) {
	for action, args := range map[string]map[string]any{
		"postgres.verify":         {"dsnFile": "/s/db.dsn", "rowCounts": map[string]any{"cases": 1}, "newest": map[string]any{"cases": "opened_at"}},
		"postgres.promote":        {"dsnFile": "/s/db.dsn", "fence": "case-db-dr"},
		"postgres.replicationLag": {"dsnFile": "/s/db.dsn", "maxLag": "5m"},
		"postgres.rewind":         {"dsnFile": "/s/db.dsn", "instance": "case-db-primary"},
	} {
		c, err := connOf(runbooks.StepInput{Args: args}, action)
		require.NoError(t, err, action)
		assert.Equal(t, "/s/db.dsn", c.DSNFile, action)
	}
	_, err := connOf(runbooks.StepInput{Args: map[string]any{"dsnFile": "x", "newst": 1}}, "postgres.verify")
	assert.Error(t, err, "a misspelt argument is still refused")
}
