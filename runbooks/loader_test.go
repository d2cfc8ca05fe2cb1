package runbooks_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

func parseErr(t *testing.T, doc string) string {
	t.Helper()
	_, err := runbooks.Parse([]byte(doc), "t.yaml")
	require.Error(t, err)
	return err.Error()
}

func TestParseIsStrictAndReportsLines(t *testing.T) {
	msg := parseErr(t, header+"  layerz: {}\n  layers:\n    network:\n      - {id: a, action: http.check, colour: red}\n")
	assert.Contains(t, msg, `t.yaml:11: spec.layerz: unknown field "layerz"`)
	assert.Contains(t, msg, `t.yaml:14: spec.layers.network[0].colour: unknown field "colour" (allowed here: id, action,`)
}

func TestParseRejectsBadDurationsAndTypes(t *testing.T) {
	msg := parseErr(t, strings.Replace(header, "rto: 60m", "rto: soon", 1)+"  layers: {network: [{id: a, action: x, retry: {attempts: many}}]}\n")
	assert.Contains(t, msg, `t.yaml:6: spec.objectives.rto: invalid duration "soon"`)
	assert.Contains(t, msg, "cannot unmarshal")
}

func TestParseLimits(t *testing.T) {
	big := make([]byte, runbooks.MaxFileSize+1)
	assert.Contains(t, parseErr(t, string(big)), "limited to 1048576")
	assert.Contains(t, parseErr(t, "  \n"), "file is empty")
	assert.Contains(t, parseErr(t, header+"---\n"+header), "more than one YAML document")

	var b strings.Builder
	b.WriteString("a: &x [1]\nb: [")
	for i := 0; i <= runbooks.MaxAliases; i++ {
		b.WriteString("*x, ")
	}
	b.WriteString("]\n")
	assert.Contains(t, parseErr(t, b.String()), "YAML aliases; at most 16")
	// the billion-laughs shape is refused before any expansion
	assert.Contains(t, parseErr(t, "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"), "aliases")
}

func TestLoadFileRefusesOversizeWithoutReading(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.yaml")
	require.NoError(t, os.WriteFile(p, make([]byte, runbooks.MaxFileSize+10), 0o644))
	_, _, err := runbooks.LoadFile(p)
	assert.ErrorContains(t, err, "split it into several runbooks")
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "15m": 15 * time.Minute, "4h": 4 * time.Hour, "30d": 720 * time.Hour, "1h30m": 90 * time.Minute} {
		d, err := runbooks.ParseDuration(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, d.D(), in)
		assert.Equal(t, in, d.String())
	}
	_, err := runbooks.ParseDuration("5 minutes")
	assert.ErrorContains(t, err, "use a number with unit")
}

func TestCatalogLooksUpByNameWithHash(t *testing.T) {
	dir := t.TempDir()
	doc := header + "  layers: {network: [{id: a, action: http.check, with: {url: \"http://x\"}}]}\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(doc), 0o644))
	cat, err := runbooks.LoadCatalog(dir)
	require.NoError(t, err)
	e, err := cat.Get("book")
	require.NoError(t, err)
	assert.Equal(t, runbooks.HashOf([]byte(doc)), e.Hash)
	assert.True(t, strings.HasPrefix(e.Hash, "sha256:"))
	_, err = cat.Get("bok")
	assert.ErrorContains(t, err, `no runbook named "bok" in the catalog (did you mean "book"?)`)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(doc), 0o644))
	_, err = runbooks.LoadCatalog(dir)
	assert.ErrorContains(t, err, `name "book" is also used by`)
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("examples/*.yaml")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte("a: &a [1]\nb: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rb, err := runbooks.Parse(data, "fuzz.yaml")
		if err != nil {
			if _, ok := err.(runbooks.Problems); !ok {
				t.Fatalf("Parse returned %T, want Problems", err)
			}
			return
		}
		// whatever parses must validate and plan without panicking
		runbooks.Validate(rb, schemaStub{})
		runbooks.MakePlan(rb)
	})
}

type schemaStub struct{}

func (schemaStub) Action(string) (runbooks.ActionSpec, bool) { return runbooks.ActionSpec{}, false }
func (schemaStub) ActionNames() []string                     { return nil }

// A syntax error is reported on the line that is wrong, not where the
// enclosing mapping began (yaml.v3's context line).
func TestSyntaxErrorsPointAtTheLineThatIsWrong(t *testing.T) {
	example, err := os.ReadFile("examples/case-management-region-failover.yaml")
	require.NoError(t, err)
	lines := strings.SplitAfter(string(example), "\n")
	lineOf := func(text string) int {
		for i, l := range lines {
			if strings.Contains(l, text) {
				return i + 1
			}
		}
		t.Fatalf("example (a) has no line with %q", text)
		return 0
	}
	n, name := lineOf("action: kube.apply"), lineOf("  name:")
	edit := func(line int, from, to string) string {
		l := append([]string(nil), lines...)
		l[line-1] = strings.Replace(l[line-1], from, to, 1)
		return strings.Join(l, "")
	}
	at := func(line int, msg string) string { return fmt.Sprintf("t.yaml:%d: %s", line, msg) }
	for desc, c := range map[string]struct {
		doc  string
		want string
	}{
		"a key without its colon":       {edit(n, "action: ", "action "), at(n, "could not find expected ':'")},
		"a list item inside a mapping":  {edit(n, "action:", "- action:"), at(n, "did not find expected key")},
		"a key indented one too far":    {edit(n, "action:", " action:"), at(n, "mapping values are not allowed")},
		"a tab for indentation":         {edit(name, "  name:", "\tname:"), at(name, "found character that cannot start any token")},
		"a tab in a step's indentation": {edit(n, "        action:", "\taction:"), at(n, "found a tab character that violates indentation")},
		"an unclosed list at the end":   {edit(n, "action: ", "action: ["), at(n, "did not find expected ',' or ']'")},
	} {
		t.Run(desc, func(t *testing.T) {
			got := parseErr(t, c.doc)
			assert.Contains(t, got, c.want)
			assert.Contains(t, got, " — ", "the parser's words come with what usually causes them and the fix")
		})
	}
	assert.Contains(t, parseErr(t, edit(n, "action:", " action:")), "line the key up with its siblings")
}
