package runbooks

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written the way runbooks write it: "30s", "15m",
// "4h", "30d" or a combination Go understands ("1h30m"). "d" means 24 hours.
// It marshals to JSON as that string so the Temporal UI shows it readably.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ParseDuration parses a runbook duration. Days ("30d") are accepted on their
// own. Negative values parse (an RTO budget can be overdrawn); the validator
// refuses them where they make no sense.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration: write a number with a unit, e.g. 15m")
	}
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: days are written as a whole number, e.g. 30d", s)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use a number with unit s, m, h or d, e.g. 15m", s)
	}
	return Duration(v), nil
}

// String renders the duration compactly: 90m → "1h30m", 30d → "30d".
func (d Duration) String() string {
	v := time.Duration(d)
	if v != 0 && v%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", v/(24*time.Hour))
	}
	s := v.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// UnmarshalYAML reads "15m"-style strings. Errors are yaml.TypeErrors with
// the line number, so the decoder carries on and reports every problem.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: expected a duration such as 15m", n.Line, n.Column)}}
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: %v", n.Line, n.Column, err)}}
	}
	*d = v
	return nil
}

// MarshalYAML writes the compact string form.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes the compact string form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts the string form, or nanoseconds as a number.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := ParseDuration(s)
		if err != nil {
			return err
		}
		*d = v
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration must be a string such as \"15m\"")
	}
	*d = Duration(n)
	return nil
}

// Readable rounds for people: whole seconds from 10s up, milliseconds below.
func (d Duration) Readable() string {
	v := time.Duration(d)
	if v >= 10*time.Second || v <= -10*time.Second {
		return Duration(v.Round(time.Second)).String()
	}
	return v.Round(time.Millisecond).String()
}
