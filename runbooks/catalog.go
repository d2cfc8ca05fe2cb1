package runbooks

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Entry is one runbook of a catalog with the exact text it was read from.
type Entry struct {
	Runbook *Runbook
	// Hash is "sha256:<hex>" of Source, so evidence names the exact text that ran.
	Hash   string
	Path   string
	Source []byte
}

// Catalog is a set of runbooks and recovery plans looked up by
// metadata.name (unique across both: lifeboat drill NAME takes either).
type Catalog struct {
	entries map[string]Entry
	plans   map[string]PlanEntry
}

// PlanEntry is one recovery plan of a catalog with the exact text it was read from.
type PlanEntry struct {
	Plan   *RecoveryPlan
	Hash   string
	Path   string
	Source []byte
}

// HashOf returns the content hash recorded for a runbook text.
func HashOf(source []byte) string {
	sum := sha256.Sum256(source)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// LoadCatalog reads every *.yaml / *.yml file of the given directories. Every
// file must parse and names must be unique; all problems are reported together.
// Semantic validation is the caller's (it needs the action schema).
func LoadCatalog(dirs ...string) (*Catalog, error) {
	c := &Catalog{entries: map[string]Entry{}, plans: map[string]PlanEntry{}}
	var problems Problems
	for _, dir := range dirs {
		files, err := RunbookFiles(dir)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			name, line, entry, plan, err := loadEntry(f)
			if err != nil {
				if ps, ok := err.(Problems); ok {
					problems = append(problems, ps...)
					continue
				}
				return nil, err
			}
			if prev := c.pathOf(name); prev != "" {
				problems = append(problems, Problem{File: f, Path: "metadata.name", Line: line,
					Message: fmt.Sprintf("name %q is also used by %s: names are unique in a catalog (runbooks and recovery plans alike)", name, prev)})
				continue
			}
			if plan != nil {
				c.plans[name] = *plan
			} else {
				c.entries[name] = *entry
			}
		}
	}
	if len(problems) > 0 {
		return c, problems
	}
	return c, nil
}

// loadEntry reads one catalog file as a runbook or a recovery plan, by its kind.
func loadEntry(f string) (name string, line int, entry *Entry, plan *PlanEntry, err error) {
	src, err := ReadDocument(f)
	if err != nil {
		return "", 0, nil, nil, err
	}
	if KindOf(src) == PlanKind {
		p, err := ParsePlan(src, f)
		if err != nil {
			return "", 0, nil, nil, err
		}
		return p.Metadata.Name, p.LineOf("metadata.name"), nil, &PlanEntry{Plan: p, Hash: HashOf(src), Path: f, Source: src}, nil
	}
	rb, err := Parse(src, f)
	if err != nil {
		return "", 0, nil, nil, err
	}
	return rb.Metadata.Name, rb.LineOf("metadata.name"), &Entry{Runbook: rb, Hash: HashOf(src), Path: f, Source: src}, nil, nil
}

// LoadDocument reads one file as a runbook or a recovery plan, by its kind:
// exactly one of the two is returned when err is nil.
func LoadDocument(path string) (*Runbook, *RecoveryPlan, error) {
	_, _, e, p, err := loadEntry(path)
	switch {
	case err != nil:
		return nil, nil, err
	case p != nil:
		return nil, p.Plan, nil
	}
	return e.Runbook, nil, nil
}

func (c *Catalog) pathOf(name string) string {
	if e, ok := c.entries[name]; ok {
		return e.Path
	}
	if p, ok := c.plans[name]; ok {
		return p.Path
	}
	return ""
}

// RunbookFiles lists the runbook files of a directory (or the file itself), sorted.
func RunbookFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("runbook path %s: %w", path, err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var out []string
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			out = append(out, filepath.Join(path, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Get returns the runbook called name.
func (c *Catalog) Get(name string) (Entry, error) {
	e, ok := c.entries[name]
	if _, plan := c.plans[name]; plan && !ok {
		return Entry{}, fmt.Errorf("%q is a recovery plan, not a runbook: start it as a plan (lifeboat drill %s, or the RecoveryPlanWorkflow type in the UI)", name, name)
	}
	if !ok {
		return Entry{}, fmt.Errorf("no runbook named %q in the catalog%s", name, suggest(name, c.Names()))
	}
	return e, nil
}

// Names lists the catalog's runbook names, sorted.
func (c *Catalog) Names() []string { return sortedKeys(c.entries) }

// Plan returns the recovery plan called name.
func (c *Catalog) Plan(name string) (PlanEntry, error) {
	p, ok := c.plans[name]
	if !ok {
		if _, runbook := c.entries[name]; runbook {
			return PlanEntry{}, fmt.Errorf("%q is a runbook, not a recovery plan: start it as a run (RestoreWorkflow)", name)
		}
		return PlanEntry{}, fmt.Errorf("no recovery plan named %q in the catalog%s", name, suggest(name, c.PlanNames()))
	}
	return p, nil
}

// PlanNames lists the catalog's recovery plan names, sorted.
func (c *Catalog) PlanNames() []string { return sortedKeys(c.plans) }

// IsPlan is true when name is a recovery plan of the catalog.
func (c *Catalog) IsPlan(name string) bool {
	_, ok := c.plans[name]
	return ok
}

// WithPinned is a copy of the catalog whose runbooks named in pinned
// (name → YAML text) are those texts instead: a re-enacted plan's members
// as they ran then.
func (c *Catalog) WithPinned(pinned map[string]string) (*Catalog, error) {
	out := &Catalog{entries: maps.Clone(c.entries), plans: c.plans}
	for _, name := range sortedKeys(pinned) {
		src := []byte(pinned[name])
		rb, err := Parse(src, "pinned runbook "+name)
		if err != nil {
			return nil, err
		}
		if rb.Metadata.Name != name {
			return nil, fmt.Errorf("pinned runbook %s is named %s", name, rb.Metadata.Name)
		}
		out.entries[name] = Entry{Runbook: rb, Hash: HashOf(src), Path: "(the text member " + name + " ran)", Source: src}
	}
	return out, nil
}
