package runbooks

import (
	"fmt"
	"sort"
	"strings"
)

// ArgType is the type of one action argument.
type ArgType string

// Argument types an action can declare.
const (
	ArgString   ArgType = "string"   // a string
	ArgInt      ArgType = "int"      // a whole number
	ArgBool     ArgType = "bool"     // true or false
	ArgDuration ArgType = "duration" // "30s", "15m", "4h", "30d"
	ArgStrings  ArgType = "[]string" // a list of strings
	ArgStrMap   ArgType = "map[string]string"
	ArgIntMap   ArgType = "map[string]int"
	ArgObject   ArgType = "object" // any mapping
)

// ArgSpec declares one argument of an action.
type ArgSpec struct {
	Name     string
	Type     ArgType
	Required bool
	Doc      string
}

// Effect is what an action may change.
type Effect string

// The effects an action can declare.
const (
	EffectReadOnly       Effect = "read-only"
	EffectNamespaced     Effect = "namespaced objects"
	EffectClusterScoped  Effect = "cluster-scoped objects"
	EffectEdge           Effect = "edge/DNS"
	EffectInfrastructure Effect = "infrastructure"
)

// DrillRule is how a drill keeps an action away from production.
type DrillRule string

// The drill rules an action can declare (see ValidateDrill).
const (
	// DrillNothing: the action changes nothing a drill must protect.
	DrillNothing DrillRule = "nothing to keep away: it changes no production state"
	// DrillMapNamespaces: its namespace arguments ("namespace",
	// "namespaces") must be mapped by spec.drill.namespaceMappings; a
	// teardown step may only name mapping destinations.
	DrillMapNamespaces DrillRule = "spec.drill.namespaceMappings"
	// DrillOverrideOrSkip: a drill must skip the step or point one of its
	// DrillOverrides arguments elsewhere through spec.drill.with.
	DrillOverrideOrSkip DrillRule = "spec.drill.skip or an override in spec.drill.with"
)

// ActionSpec declares an action: its name, one-line doc and argument schema,
// plus an optional Check for rules a schema cannot say (e.g. "backup or schedule").
type ActionSpec struct {
	Name string
	Doc  string
	Args []ArgSpec
	// Effect is what the action may change; Drill is how a drill keeps it
	// inside the drill's scope; DrillOverrides are the arguments a
	// spec.drill.with override points away from production (DrillOverrideOrSkip).
	Effect         Effect
	Drill          DrillRule
	DrillOverrides []string
	// Check returns extra problems with the arguments (already type-checked).
	Check func(args map[string]any) []string
	// ChangesWith, for an action that is read-only with some arguments,
	// says why it is an external side effect with args ("" when it is
	// not): a drill must then skip the step or point one of its
	// DrillOverrides away from production, as for DrillOverrideOrSkip.
	ChangesWith func(args map[string]any) string
	// RecoveryPoint is true when the action reports the recovery point (backup time)
	// a step marked rpoSource measures the achieved RPO from.
	RecoveryPoint bool
	// Human is true when a person performs the step and acknowledges it; the
	// workflow itself waits for the acknowledgement.
	Human bool
	// Heartbeats is true for long waits that heartbeat while they run.
	Heartbeats bool
	// Outputs are what a later step may use as ${{ steps.ID.outputs.NAME }};
	// a name OutputAny stands for outputs the runbook names (terraform's).
	Outputs []OutputSpec
}

// OutputSpec declares one output of an action.
type OutputSpec struct {
	Name string
	Doc  string
	// Secret outputs cannot be referenced: their value would reach history.
	Secret bool
}

// Output finds the declared output name (or the OutputAny declaration).
func (a ActionSpec) Output(name string) (OutputSpec, bool) {
	for _, o := range a.Outputs {
		if o.Name == name {
			return o, true
		}
	}
	for _, o := range a.Outputs {
		if o.Name == OutputAny {
			return o, true
		}
	}
	return OutputSpec{}, false
}

// OutputNames lists the declared output names.
func (a ActionSpec) OutputNames() []string {
	out := make([]string, len(a.Outputs))
	for i, o := range a.Outputs {
		out[i] = o.Name
	}
	return out
}

// Schema looks up action declarations; the activity registry implements it.
type Schema interface {
	Action(name string) (ActionSpec, bool)
	ActionNames() []string
}

// CheckArgs checks args against the spec and returns one message per problem,
// each starting with the argument's name.
func (a ActionSpec) CheckArgs(args map[string]any) []string {
	var out []string
	known := map[string]ArgSpec{}
	for _, s := range a.Args {
		known[s.Name] = s
		v, ok := args[s.Name]
		if !ok || v == nil {
			if s.Required {
				out = append(out, fmt.Sprintf("%s: missing required argument (%s: %s)", s.Name, s.Type, s.Doc))
			}
			continue
		}
		if IsRef(v) {
			continue // an earlier step's output: its type is checked when the step runs
		}
		if msg := checkType(s.Type, v); msg != "" {
			out = append(out, fmt.Sprintf("%s: %s", s.Name, msg))
		}
	}
	var unknown []string
	for k := range args {
		if _, ok := known[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		out = append(out, fmt.Sprintf("%s: unknown argument for %s (allowed: %s)", k, a.Name, strings.Join(a.argNames(), ", ")))
	}
	if len(out) == 0 && a.Check != nil {
		out = append(out, a.Check(args)...)
	}
	return out
}

func (a ActionSpec) argNames() []string {
	names := make([]string, len(a.Args))
	for i, s := range a.Args {
		names[i] = s.Name
	}
	return names
}

func checkType(t ArgType, v any) string {
	switch t {
	case ArgString:
		if _, ok := v.(string); !ok {
			return fmt.Sprintf("must be a string, got %s", describe(v))
		}
	case ArgInt:
		if _, ok := AsInt(v); !ok {
			return fmt.Sprintf("must be a whole number, got %s", describe(v))
		}
	case ArgBool:
		if _, ok := v.(bool); !ok {
			return fmt.Sprintf("must be true or false, got %s", describe(v))
		}
	case ArgDuration:
		s, ok := v.(string)
		if !ok {
			return fmt.Sprintf("must be a duration such as 30s, got %s", describe(v))
		}
		if _, err := ParseDuration(s); err != nil {
			return err.Error()
		}
	case ArgStrings:
		l, ok := v.([]any)
		if !ok {
			if _, ok := v.([]string); ok {
				return ""
			}
			return fmt.Sprintf("must be a list of strings, got %s", describe(v))
		}
		for i, e := range l {
			if _, ok := e.(string); !ok {
				return fmt.Sprintf("item %d must be a string, got %s", i, describe(e))
			}
		}
	case ArgStrMap, ArgIntMap, ArgObject:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Sprintf("must be a mapping, got %s", describe(v))
		}
		keys := sortedKeys(m)
		for _, k := range keys {
			if IsRef(m[k]) {
				continue // checked when the step runs
			}
			switch t {
			case ArgStrMap:
				if _, ok := m[k].(string); !ok {
					return fmt.Sprintf("value of %q must be a string, got %s", k, describe(m[k]))
				}
			case ArgIntMap:
				if _, ok := AsInt(m[k]); !ok {
					return fmt.Sprintf("value of %q must be a whole number, got %s", k, describe(m[k]))
				}
			}
		}
	}
	return ""
}

// AsInt reads a whole number from YAML (int) or JSON (float64) decoding.
func AsInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case float64:
		if n == float64(int(n)) {
			return int(n), true
		}
	}
	return 0, false
}

func describe(v any) string {
	switch v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case bool:
		return fmt.Sprintf("%v", v)
	default:
		return fmt.Sprintf("%v", v)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
