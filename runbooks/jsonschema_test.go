package runbooks_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

const publishedSchema = "../schema/lifeboat-v1.json"

// The published schema is today's: the types and the catalogue as built.
func TestThePublishedSchemaIsGeneratedFromTodaysTypesAndCatalogue(t *testing.T) {
	want, err := runbooks.JSONSchema(activities.Catalogue())
	require.NoError(t, err)
	got, err := os.ReadFile(publishedSchema)
	require.NoError(t, err)
	if !bytes.Equal(got, want) {
		t.Fatalf("schema/lifeboat-v1.json is out of date: regenerate it with go run ./cmd/lifeboat schema > schema/lifeboat-v1.json")
	}
}

// compiled is the published schema, compiled by a maintained validator.
func compiled(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	s, err := c.Compile(publishedSchema)
	require.NoError(t, err)
	return s
}

// check validates a YAML document against the schema.
func check(t *testing.T, s *jsonschema.Schema, doc string) error {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(doc))
	require.NoError(t, err)
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	require.NoError(t, err)
	return s.Validate(v)
}

func TestEveryExampleStartsWithTheSchemaAndSatisfiesIt(t *testing.T) {
	s := compiled(t)
	files, err := filepath.Glob("examples/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		first, _, _ := strings.Cut(string(b), "\n")
		assert.Equal(t, "# yaml-language-server: $schema=../../schema/lifeboat-v1.json", first, "%s: editors find the schema from its first line", f)
		assert.NoError(t, check(t, s, string(b)), f)
	}
}

// What an editor should flag while typing, the schema refuses; the same
// document with the mistake fixed it accepts.
func TestTheSchemaRefusesWhatAnEditorShouldFlag(t *testing.T) {
	s := compiled(t)
	good := header + `  layers:
    network:
      - id: a
        action: terraform.apply
        with: {dir: net, vars: {region: ca-central-1}}
        timeout: 20m
        retry: {attempts: 2, backoff: 30s}
    edge:
      - id: b
        action: http.check
        needs: [a]
        with: {url: "${{ steps.a.outputs.url }}", expectStatus: 200}
        approval: {from: [ic], min: 1, timeout: 15m, onTimeout: abort}
  drill:
    namespaceMappings: {cases: cases-drill}
    skip: [a, b]
`
	require.NoError(t, check(t, s, good))
	for _, valid := range []struct{ from, to string }{
		{"vars: {region: ca-central-1}", `vars: "${{ steps.a.outputs.vars }}"`}, // a reference stands for any argument
		{"rto: 60m, rpo: 15m", "rto: 60m, rpo: 0"},                              // a zero duration loads
	} {
		doc := strings.Replace(good, valid.from, valid.to, 1)
		require.NotEqual(t, good, doc)
		assert.NoError(t, check(t, s, doc), "the schema refuses what lifeboat loads: %s", valid.to)
	}
	require.Empty(t, validate(t, good).Errors(), "the good document is good for lifeboat validate too")
	for _, c := range []struct{ name, from, to, want string }{
		{"a typo in an action", "action: terraform.apply", "action: terraform.aply", "action"},
		{"a missing required argument", "with: {dir: net, vars: {region: ca-central-1}}", "with: {vars: {region: ca-central-1}}", "dir"},
		{"an unknown argument", "expectStatus: 200}", "expectStatus: 200, colour: red}", "colour"},
		{"an argument of the wrong type", "expectStatus: 200", `expectStatus: "ok"`, "expectStatus"},
		{"an unknown field of a step", "timeout: 20m", "timeot: 20m", "timeot"},
		{"a duration without a unit", "timeout: 20m", "timeout: 20", "timeout"},
		{"a scope that is none", "scope: region", "scope: planet", "scope"},
		{"a failure policy that is none", "onTimeout: abort", "onTimeout: shrug", "onTimeout"},
		{"a kind that is none", "kind: Runbook", "kind: Runbok", "kind"},
	} {
		bad := strings.Replace(good, c.from, c.to, 1)
		require.NotEqual(t, good, bad, c.name)
		err := check(t, s, bad)
		if assert.Error(t, err, "%s is accepted", c.name) {
			assert.Contains(t, fmt.Sprintf("%#v", err), c.want, c.name)
		}
	}
}

// Every action with its required arguments (of their declared types) is
// accepted, so the schema never flags a step lifeboat runs.
func TestEveryActionWithItsRequiredArgumentsSatisfiesTheSchema(t *testing.T) {
	s := compiled(t)
	cat := activities.Catalogue()
	sample := map[runbooks.ArgType]string{runbooks.ArgString: `"x"`, runbooks.ArgInt: "3", runbooks.ArgBool: "true", runbooks.ArgDuration: "90s",
		runbooks.ArgStrings: "[x]", runbooks.ArgStrMap: "{k: v}", runbooks.ArgIntMap: "{k: 2}", runbooks.ArgObject: "{k: [1]}"}
	for _, name := range cat.ActionNames() {
		spec, _ := cat.Action(name)
		var with []string
		for _, a := range spec.Args {
			with = append(with, a.Name+": "+sample[a.Type])
		}
		doc := header + fmt.Sprintf("  layers:\n    network:\n      - id: s\n        action: %s\n        with: {%s}\n", name, strings.Join(with, ", "))
		assert.NoError(t, check(t, s, doc), "%s with every argument", name)
	}
	plan := `apiVersion: lifeboat/v1
kind: RecoveryPlan
metadata: {name: p, version: 1}
spec:
  scope: region
  objectives: {rto: 2h, mtd: 8h}
  members:
    - runbook: a
    - {runbook: b, after: [a], optional: true, approval: {from: [ic]}}
`
	assert.NoError(t, check(t, s, plan))
	assert.Error(t, check(t, s, strings.Replace(plan, "optional: true", "optinal: true", 1)), "a plan's member fields are checked")
}

// docs/runbooks.md's field reference is today's.
func TestTheFieldReferenceInTheDocsIsTodays(t *testing.T) {
	b, err := os.ReadFile("../docs/runbooks.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(b), "<!-- field reference: generated -->")
	require.True(t, ok, "docs/runbooks.md has no generated field reference")
	got, _, ok := strings.Cut(after, "<!-- end of field reference -->")
	require.True(t, ok)
	if got != runbooks.FieldReference() {
		t.Fatalf("docs/runbooks.md's field reference is out of date: put what go run ./cmd/lifeboat schema -o markdown prints between its markers")
	}
}
