package workflows

import "testing"

func TestShortID(t *testing.T) {
	for id, want := range map[string]string{
		"lifeboat-case-api-drill-a1b2c3":                         "a1b2c3",
		"lifeboat-case-api-drill-scheduled-2026-11-21T03:00:00Z": "030000",
		"my-run":       "my-run",
		"abcdefghijkl": "efghijkl",
	} {
		if got := shortID(id); got != want {
			t.Errorf("shortID(%q) = %q, want %q", id, got, want)
		}
	}
}
