package runbooks

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// Catalog is a set of runbooks looked up by metadata.name.
type Catalog struct {
	entries map[string]Entry
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
	c := &Catalog{entries: map[string]Entry{}}
	var problems Problems
	for _, dir := range dirs {
		files, err := RunbookFiles(dir)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			rb, src, err := LoadFile(f)
			if err != nil {
				if ps, ok := err.(Problems); ok {
					problems = append(problems, ps...)
					continue
				}
				return nil, err
			}
			if prev, dup := c.entries[rb.Metadata.Name]; dup {
				problems = append(problems, Problem{File: f, Path: "metadata.name", Line: rb.LineOf("metadata.name"),
					Message: fmt.Sprintf("runbook name %q is also used by %s: names are unique in a catalog", rb.Metadata.Name, prev.Path)})
				continue
			}
			c.entries[rb.Metadata.Name] = Entry{Runbook: rb, Hash: HashOf(src), Path: f, Source: src}
		}
	}
	if len(problems) > 0 {
		return c, problems
	}
	return c, nil
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
	if !ok {
		return Entry{}, fmt.Errorf("no runbook named %q in the catalog%s", name, suggest(name, c.Names()))
	}
	return e, nil
}

// Names lists the catalog's runbook names, sorted.
func (c *Catalog) Names() []string { return sortedKeys(c.entries) }
