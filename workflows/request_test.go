package workflows_test

import (
	"testing"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

func TestRequestRunbookName(t *testing.T) {
	inline := "apiVersion: lifeboat/v1\nkind: Runbook\nmetadata: {name: pinned-book, version: 1}\nspec: {scope: region}\n"
	for _, c := range []struct {
		req  workflows.Request
		want string
	}{
		{workflows.Request{Runbook: "from-catalog"}, "from-catalog"},
		{workflows.Request{InlineRunbook: inline}, "pinned-book"},
		{workflows.Request{InlineRunbook: "not: [yaml"}, ""},
	} {
		if got := c.req.RunbookName(); got != c.want {
			t.Errorf("RunbookName(%+v) = %q, want %q", c.req, got, c.want)
		}
	}
}
