package runbooks

// OrDash is s, or an em dash when s is empty: how evidence tables show a
// missing value.
func OrDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// YesNo is "yes" or "no", as evidence tables show a flag.
func YesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
