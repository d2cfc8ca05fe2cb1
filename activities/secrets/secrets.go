// Package secrets is how actions read secret values: only from the
// environment variables and directories the worker's configuration allows
// runbooks to name, and never back out: every value read, and every URL,
// is scrubbed from what an action returns (see Redact).
package secrets

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"go.temporal.io/sdk/temporal"
)

// Store reads secret references for actions. A runbook names a variable
// or a file; the worker decides which it may name.
type Store struct {
	// Getenv reads the worker's environment.
	Getenv func(string) string
	// Env are the variables runbooks may name (secrets.env in the config).
	Env []string
	// Dirs are the directories whose files runbooks may name (secrets.dirs).
	Dirs []string
	// Extra returns further values that must never leave the worker (the
	// Cloudflare token, the codec keys).
	Extra func() []string

	mu   sync.Mutex
	seen map[string]bool // file contents read so far
}

// minSecret is the shortest value scrubbed: shorter ones would mangle text.
const minSecret = 6

// EnvValue returns the value of variable name, which the worker must allow.
func (s *Store) EnvValue(name, field string) (string, error) {
	if !slices.Contains(s.Env, name) {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"%s names environment variable %s, which the worker does not let runbooks read: add it to secrets.env in the worker config (allowed: %s)",
			field, name, orNone(s.Env)), "SecretNotAllowed", nil)
	}
	v := ""
	if s.Getenv != nil {
		v = s.Getenv(name)
	}
	if v == "" {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: environment variable %s is empty on the worker: set it and retry the step", field, name), "ConfigError", nil)
	}
	return v, nil
}

// FileValue returns the trimmed content of path, which must lie in one of
// the allowed directories (symlinks resolved).
func (s *Store) FileValue(path, field string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: secret file %s: %v", field, path, err), "ConfigError", nil)
	}
	if !s.inDirs(real) {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"%s names file %s, outside the directories the worker lets runbooks read: add its directory to secrets.dirs in the worker config (allowed: %s)",
			field, path, orNone(s.Dirs)), "SecretNotAllowed", nil)
	}
	b, err := os.ReadFile(real)
	if err != nil {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: secret file %s: %v", field, path, err), "ConfigError", nil)
	}
	v := strings.TrimSpace(string(b))
	s.mu.Lock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.seen[v] = true
	s.mu.Unlock()
	return v, nil
}

// Allowed reports whether a runbook may name variable name.
func (s *Store) Allowed(name string) bool { return slices.Contains(s.Env, name) }

func (s *Store) inDirs(path string) bool {
	for _, d := range s.Dirs {
		root, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(root, path); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// values are every secret value the worker holds or has read.
func (s *Store) values() []string {
	var out []string
	for _, name := range s.Env {
		if s.Getenv != nil {
			out = append(out, s.Getenv(name))
		}
	}
	if s.Extra != nil {
		out = append(out, s.Extra()...)
	}
	s.mu.Lock()
	for v := range s.seen {
		out = append(out, v)
	}
	s.mu.Unlock()
	// Longest first, so a value containing another is replaced whole.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

var urlPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// Redact removes from text every secret value s knows, and from every URL
// its credentials, path and query (a webhook's token is its path): only
// scheme and host stay, enough to say which service failed. It is applied
// to every error an action returns.
func (s *Store) Redact(text string) string { return RedactURLs(s.Scrub(text)) }

// Scrub removes every secret value s knows from text (summaries keep their URLs).
func (s *Store) Scrub(text string) string {
	if s == nil {
		return text
	}
	for _, v := range s.values() {
		if len(v) >= minSecret {
			text = strings.ReplaceAll(text, v, "[redacted]")
		}
	}
	return text
}

// RedactURLs keeps only scheme://host of each URL in text.
func RedactURLs(text string) string {
	return urlPattern.ReplaceAllStringFunc(text, func(raw string) string {
		u, err := url.Parse(strings.TrimRight(raw, ".,;:)]}"))
		if err != nil || u.Host == "" {
			return "[url redacted]"
		}
		tail := raw[len(strings.TrimRight(raw, ".,;:)]}")):]
		shown := u.Scheme + "://" + u.Host
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			shown += "/…"
		}
		return shown + tail
	})
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}
