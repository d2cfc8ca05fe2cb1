package runbooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxFileSize is the largest runbook file the loader reads (1 MiB).
const MaxFileSize = 1 << 20

// MaxAliases is how many YAML aliases (*name) a runbook may use. Runbooks are
// read by tired people at 3 AM; a few anchors are fine, an alias maze is not.
const MaxAliases = 16

// Parse strictly decodes one runbook. file names the source in problems.
// Unknown fields, wrong types, several documents, oversize input and alias
// abuse are errors; every decoding problem is reported, with its line.
// It does not validate semantics: call Validate for that.
func Parse(data []byte, file string) (*Runbook, error) {
	var rb Runbook
	lines, err := decodeStrict(data, file, &rb, "a runbook starts with apiVersion: "+APIVersion, "put one runbook in each file")
	if err != nil {
		return nil, err
	}
	rb.lines = lines
	return &rb, nil
}

// ParsePlan strictly decodes one recovery plan, as Parse does a runbook.
func ParsePlan(data []byte, file string) (*RecoveryPlan, error) {
	var p RecoveryPlan
	lines, err := decodeStrict(data, file, &p, "a recovery plan starts with apiVersion: "+APIVersion, "put one recovery plan in each file")
	if err != nil {
		return nil, err
	}
	p.lines = lines
	return &p, nil
}

// KindOf reads a document's kind without decoding the rest ("" when the
// text is not YAML or has no kind).
func KindOf(data []byte) string {
	var head struct {
		Kind string `yaml:"kind"`
	}
	_ = yaml.Unmarshal(data, &head)
	return head.Kind
}

// decodeStrict decodes one YAML document into v, refusing unknown fields,
// wrong types, several documents, oversize input and alias abuse; it
// returns the line of every path.
func decodeStrict(data []byte, file string, v any, emptyHint, oneHint string) (map[string]int, error) {
	fail := func(ps ...Problem) error {
		for i := range ps {
			ps[i].File = file
		}
		return Problems(ps)
	}
	if len(data) > MaxFileSize {
		return nil, fail(Problem{Message: fmt.Sprintf("file is %d bytes; runbooks are limited to %d (1 MiB): split it into several runbooks", len(data), MaxFileSize)})
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fail(Problem{Message: "file is empty: " + emptyHint})
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fail(syntaxProblems(data, err)...)
	}
	if n := countAliases(&root); n > MaxAliases {
		return nil, fail(Problem{Message: fmt.Sprintf("uses %d YAML aliases; at most %d are allowed: write the values out", n, MaxAliases)})
	}
	lines, values := map[string]int{}, map[string]string{}
	if len(root.Content) > 0 {
		indexLines(root.Content[0], "", lines, values)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return nil, fail(yamlProblems(err, lines, values)...)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fail(Problem{Line: extra.Line, Message: "more than one YAML document: " + oneHint})
	}
	return lines, nil
}

// LoadFile reads and parses one runbook file, returning its bytes too.
func LoadFile(path string) (*Runbook, []byte, error) {
	data, err := ReadDocument(path)
	if err != nil {
		return nil, nil, err
	}
	if KindOf(data) == PlanKind {
		return nil, data, Problems{{File: path, Path: "kind", Message: "this file is a recovery plan, not a runbook: lifeboat plan and validate read it with its catalog"}}
	}
	rb, err := Parse(data, path)
	return rb, data, err
}

// ReadDocument reads a runbook or plan file, refusing one over MaxFileSize
// before reading it.
func ReadDocument(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Size() > MaxFileSize {
		return nil, Problems{{File: path, Message: fmt.Sprintf("file is %d bytes; runbooks are limited to %d (1 MiB): split it into several runbooks", st.Size(), MaxFileSize)}}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// LineOf returns the line of the YAML node at path, or of its closest known
// parent, or 0 when the runbook was not loaded from YAML.
func (r *Runbook) LineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := r.lines[p]; ok {
			return l
		}
	}
	return 0
}

func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndex(p, "["); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}

func countAliases(n *yaml.Node) int {
	c := 0
	if n.Kind == yaml.AliasNode {
		c++
	}
	for _, ch := range n.Content {
		c += countAliases(ch)
	}
	return c
}

// indexLines records the line of every mapping key and sequence item by path,
// and the path of every scalar value by "line:column".
func indexLines(n *yaml.Node, path string, out map[string]int, values map[string]string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			if _, seen := out[p]; !seen {
				out[p] = n.Content[i].Line
			}
			indexLines(n.Content[i+1], p, out, values)
		}
	case yaml.ScalarNode:
		values[fmt.Sprintf("%d:%d", n.Line, n.Column)] = path
	case yaml.SequenceNode:
		for i, ch := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			out[p] = ch.Line
			indexLines(ch, p, out, values)
		}
	}
}

var (
	reUnknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type runbooks\.(\w+)`)
	reLine         = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	reColumn       = regexp.MustCompile(`^column (\d+): (.*)$`)
)

// yamlProblems turns a yaml error (possibly listing many problems) into Problems,
// rewording Go type names into the field names a runbook author knows.
func yamlProblems(err error, lines map[string]int, values map[string]string) Problems {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out Problems
	for _, m := range msgs {
		if sub := reUnknownField.FindStringSubmatch(m); sub != nil {
			line, _ := strconv.Atoi(sub[1])
			out = append(out, Problem{
				Line: line, Path: keyAtLine(lines, line, sub[2]),
				Message: fmt.Sprintf("unknown field %q (allowed here: %s)", sub[2], strings.Join(yamlFields(sub[3]), ", ")),
			})
			continue
		}
		if sub := reLine.FindStringSubmatch(m); sub != nil {
			line, _ := strconv.Atoi(sub[1])
			if col := reColumn.FindStringSubmatch(sub[2]); col != nil {
				c, _ := strconv.Atoi(col[1])
				out = append(out, Problem{Line: line, Path: values[fmt.Sprintf("%d:%d", line, c)], Message: col[2]})
				continue
			}
			msg := strings.NewReplacer("!!str", "string", "!!int", "number", "!!map", "mapping", "!!seq", "list", "!!bool", "boolean",
				"runbooks.", "", "[]", "list of ", "map[string]", "mapping of ").Replace(sub[2])
			out = append(out, Problem{Line: line, Path: pathAtLine(lines, line), Message: msg})
			continue
		}
		out = append(out, Problem{Message: strings.TrimPrefix(m, "yaml: ")})
	}
	return out
}

// syntaxProblems are the problems of YAML that does not parse, at the line
// where the text goes wrong. yaml.v3 reports the line where the enclosing
// mapping or list began (a bad key on line 31 of a step that starts on line
// 29 is "line 29"); the first line whose text, read up to it, no longer
// parses is the one the author must fix.
func syntaxProblems(data []byte, err error) Problems {
	ps := yamlProblems(err, nil, nil)
	if len(ps) != 1 || ps[0].Line == 0 {
		return ps
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	fails := func(n int) bool {
		var probe yaml.Node
		return yaml.Unmarshal(bytes.Join(lines[:n], nil), &probe) != nil
	}
	// Binary search (a file may hold 1 MiB): the whole text fails.
	lo, hi := min(ps[0].Line, len(lines)), len(lines)
	for lo < hi {
		if mid := (lo + hi) / 2; fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	ps[0].Line = lo
	for msg, hint := range syntaxHints {
		if strings.Contains(ps[0].Message, msg) {
			ps[0].Message += " — " + hint
			break
		}
	}
	return ps
}

// syntaxHints say what usually causes each of yaml.v3's parser messages,
// and the fix: the parser's words alone leave a tired author guessing.
var syntaxHints = map[string]string{
	"mapping values are not allowed":   "a key indented deeper or shallower than the keys beside it, or an unquoted value holding ': ': line the key up with its siblings, or quote the value",
	"could not find expected ':'":      "a key without its colon: write key: value",
	"did not find expected key":        "a line indented less than the keys above it, or a '- ' list item where a key belongs: check this line's indentation against the line above",
	"cannot start any token":           "YAML indents with spaces, never tabs: replace the tab with spaces",
	"tab character that violates":      "YAML indents with spaces, never tabs: replace the tab with spaces",
	"did not find expected ',' or ']'": "a [ list ] that is not closed: end it with ]",
	"did not find expected ',' or '}'": "a { mapping } that is not closed: end it with }",
	"found unexpected end of stream":   "a quoted string that is not closed: end it with its quote",
}

// keyAtLine finds the path of the key named key at a line.
func keyAtLine(lines map[string]int, line int, key string) string {
	for p, l := range lines {
		if l == line && (p == key || strings.HasSuffix(p, "."+key)) {
			return p
		}
	}
	return pathAtLine(lines, line)
}

// pathAtLine finds the deepest path recorded at a line (ties: the first in order).
func pathAtLine(lines map[string]int, line int) string {
	best := ""
	for p, l := range lines {
		if l == line && (len(p) > len(best) || (len(p) == len(best) && p < best)) {
			best = p
		}
	}
	return best
}

var typesByName = map[string]reflect.Type{
	"Runbook": reflect.TypeOf(Runbook{}), "Metadata": reflect.TypeOf(Metadata{}), "Spec": reflect.TypeOf(Spec{}),
	"Objectives": reflect.TypeOf(Objectives{}), "Target": reflect.TypeOf(Target{}), "Layers": reflect.TypeOf(Layers{}),
	"Step": reflect.TypeOf(Step{}), "Retry": reflect.TypeOf(Retry{}), "Approval": reflect.TypeOf(Approval{}),
	"Drill": reflect.TypeOf(Drill{}), "RecoveryPlan": reflect.TypeOf(RecoveryPlan{}), "PlanSpec": reflect.TypeOf(PlanSpec{}),
	"Member": reflect.TypeOf(Member{}), "PlanDrill": reflect.TypeOf(PlanDrill{}),
}

// yamlFields lists the YAML keys a runbook type accepts.
func yamlFields(typeName string) []string {
	t, ok := typesByName[typeName]
	if !ok {
		return nil
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		if tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
			out = append(out, tag)
		}
	}
	return out
}
