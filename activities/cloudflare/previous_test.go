package cloudflare

import "testing"

// Issue 24 (8): parsePrevious split on ":" and lost the previous value of
// an AAAA record, so a failback could not restore it.
func TestThePreviousValueOfEveryRecordTypeSurvivesTheComment(t *testing.T) {
	const tag = " (wf/run/shift)"
	for _, v := range []recordValue{
		{Type: "A", Content: "192.0.2.10", TTL: 60, Proxied: true},
		{Type: "AAAA", Content: "2001:db8::10", TTL: 300},
		{Type: "CNAME", Content: "primary-lb.example.com", TTL: 1},
	} {
		got, ok := parsePrevious(commentPrefix+formatPrevious(v)+tag, tag)
		if !ok || got != v {
			t.Errorf("%s: read back %+v (ok %t), want %+v", v.Type, got, ok, v)
		}
	}
}
