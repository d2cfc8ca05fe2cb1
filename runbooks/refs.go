package runbooks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// A step argument may use an earlier step's output:
//
//	with: {target: dr, host: "${{ steps.dr-network.outputs.lb_hostname }}"}
//
// A value that is exactly one reference takes the output as it is (a number
// stays a number, a list a list); a reference inside other text is replaced
// by the output as text (JSON for lists and maps). The referenced step must
// be one the referring step needs, directly or through other steps, and its
// action must declare the output (Validate checks both).

// Ref is one ${{ steps.ID.outputs.NAME }} reference in a step's arguments.
type Ref struct {
	Step   string
	Output string
	// Text is the reference as written.
	Text string
}

// String is the reference's canonical form, the key under which its
// resolved value is recorded in the evidence.
func (r Ref) String() string { return "steps." + r.Step + ".outputs." + r.Output }

var (
	refPattern = regexp.MustCompile(`\$\{\{\s*steps\.([a-z0-9][-a-z0-9_.]*?)\.outputs\.([A-Za-z0-9_-]+)\s*\}\}`)
	refOpening = regexp.MustCompile(`\$\{\{`)
	// failoverRef is a written failback's reference to what its failover
	// recorded: ${{ failover.steps.ID.outputs.NAME }} (ResolveFailoverRefs).
	failoverRef = regexp.MustCompile(`\$\{\{\s*failover\.steps\.([a-z0-9][-a-z0-9_.]*?)\.outputs\.([A-Za-z0-9_-]+)\s*\}\}`)
)

// SensitiveOutput is the value an action reports in place of a secret
// output (terraform's sensitive outputs); a reference to it is refused.
const SensitiveOutput = "(sensitive)"

// OutputAny in an action's Outputs means it reports outputs whose names the
// runbook decides (terraform's outputs).
const OutputAny = "*"

// RefsIn lists the references in v (a step's arguments: strings, lists and
// maps, walked in a stable order), and the strings that open a reference
// with ${{ but do not follow its form.
func RefsIn(v any) (refs []Ref, malformed []string) {
	walkStrings(v, func(s string) {
		found := refPattern.FindAllStringSubmatch(s, -1)
		for _, m := range found {
			refs = append(refs, Ref{Step: m[1], Output: m[2], Text: m[0]})
		}
		// A failback's references to the failover are checked on their own (failbackRefs).
		if len(refOpening.FindAllStringIndex(s, -1)) > len(found)+len(failoverRef.FindAllStringIndex(s, -1)) {
			malformed = append(malformed, s)
		}
	})
	return refs, malformed
}

// HasRefs is true when v holds at least one reference.
func HasRefs(v any) bool {
	refs, _ := RefsIn(v)
	return len(refs) > 0
}

func walkStrings(v any, fn func(string)) {
	switch t := v.(type) {
	case string:
		fn(t)
	case []any:
		for _, e := range t {
			walkStrings(e, fn)
		}
	case []string:
		for _, e := range t {
			fn(e)
		}
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walkStrings(t[k], fn)
		}
	case map[string]string:
		for _, k := range sortedKeys(t) {
			fn(t[k])
		}
	}
}

// isWholeRef is true when s is exactly one reference (spaces around allowed).
func isWholeRef(s string) bool {
	s = strings.TrimSpace(s)
	loc := refPattern.FindStringIndex(s)
	return loc != nil && loc[0] == 0 && loc[1] == len(s)
}

// IsRef is true when v is a string that is exactly one reference: its type
// is known only when the step runs, so the argument's type is checked then.
func IsRef(v any) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	if isWholeRef(s) {
		return true
	}
	loc := failoverRef.FindStringIndex(strings.TrimSpace(s))
	return loc != nil && loc[0] == 0 && loc[1] == len(strings.TrimSpace(s))
}

// RefError says a reference cannot be resolved when the step is about to run.
type RefError struct {
	Ref    Ref
	Reason string
}

func (e *RefError) Error() string { return fmt.Sprintf("%s: %s", e.Ref.Text, e.Reason) }

// ResolveRefs returns a copy of args with every reference replaced by the
// output lookup returns, and the values used, keyed by Ref.String().
func ResolveRefs(args map[string]any, lookup func(Ref) (any, error)) (map[string]any, map[string]any, error) {
	return substitute(args, refPattern, lookup)
}

// ResolveFailoverRefs is ResolveRefs for a written failback's references
// to its failover's outputs (${{ failover.steps.ID.outputs.NAME }}).
func ResolveFailoverRefs(args map[string]any, lookup func(Ref) (any, error)) (map[string]any, map[string]any, error) {
	return substitute(args, failoverRef, lookup)
}

// substitute replaces every match of pattern (whose groups are a step id and
// an output name) in args' strings, lists and maps: a string that is one
// whole reference takes the value as it is, a reference in other text its
// text. Sensitive values are refused.
func substitute(args map[string]any, pattern *regexp.Regexp, lookup func(Ref) (any, error)) (map[string]any, map[string]any, error) {
	used := map[string]any{}
	var firstErr error
	get := func(m []string) (any, bool) {
		ref := Ref{Step: m[1], Output: m[2], Text: m[0]}
		out, err := lookupChecked(ref, lookup)
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			return nil, false
		}
		used[ref.String()] = out
		return out, true
	}
	var resolve func(v any) any
	resolve = func(v any) any {
		switch t := v.(type) {
		case string:
			if !strings.Contains(t, "${{") {
				return t
			}
			trimmed := strings.TrimSpace(t)
			if loc := pattern.FindStringIndex(trimmed); loc != nil && loc[0] == 0 && loc[1] == len(trimmed) {
				if out, ok := get(pattern.FindStringSubmatch(trimmed)); ok {
					return out
				}
				return t
			}
			return pattern.ReplaceAllStringFunc(t, func(text string) string {
				if out, ok := get(pattern.FindStringSubmatch(text)); ok {
					return AsText(out)
				}
				return text
			})
		case []any:
			out := make([]any, len(t))
			for i, e := range t {
				out[i] = resolve(e)
			}
			return out
		case map[string]any:
			out := make(map[string]any, len(t))
			for k, e := range t {
				out[k] = resolve(e)
			}
			return out
		}
		return v
	}
	out := make(map[string]any, len(args))
	for k, v := range args {
		out[k] = resolve(v)
	}
	return out, used, firstErr
}

func lookupChecked(ref Ref, lookup func(Ref) (any, error)) (any, error) {
	v, err := lookup(ref)
	if err != nil {
		return nil, &RefError{Ref: ref, Reason: err.Error()}
	}
	if s, ok := v.(string); ok && s == SensitiveOutput {
		return nil, &RefError{Ref: ref, Reason: "the output is sensitive: a secret never passes through a workflow's history; let the action read it from its secret store"}
	}
	return v, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// AsText is how a value reads in text: a reference inside a longer string,
// an input the evidence lists.
func AsText(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case nil:
		return ""
	case float64, int, int64, bool:
		return fmt.Sprint(t)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
