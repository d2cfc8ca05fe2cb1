package evidence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Store is where evidence objects live: a directory (DirStore) or a prefix
// of an S3 bucket (S3Store). Names are slash-separated and relative to the
// store's root. The chain of records relies on Create alone being
// exclusive: any number of workers may share one store.
type Store interface {
	// Get returns an object's bytes; an error wrapping fs.ErrNotExist when
	// there is none.
	Get(ctx context.Context, name string) ([]byte, error)
	// Put writes an object whole, replacing any earlier one. lock asks for
	// the store's retention: the object cannot be deleted, nor its version
	// replaced, before it ends (S3 Object Lock; a directory has none).
	Put(ctx context.Context, name string, data []byte, lock bool) error
	// Create writes an object only if none of that name exists, and locks
	// it like Put(lock); ErrExists when one does. It is atomic across
	// processes and machines: it is how a chain position is taken.
	Create(ctx context.Context, name string, data []byte) error
	// List returns the names under prefix (all depths), sorted, after
	// startAfter ("" for all).
	List(ctx context.Context, prefix, startAfter string) ([]string, error)
	// Location names an object for people and for outputs: a file path or
	// an s3:// URL.
	Location(name string) string
}

// ErrExists is Create's answer when the object is already there.
var ErrExists = errors.New("the object exists")

// DirStore is a Store in a local directory. Create links a complete
// temporary file into place (link(2) fails if the name exists), so
// processes sharing the directory on one filesystem never both take a name.
type DirStore struct{ dir string }

// NewDirStore returns a store rooted at dir (created on first write).
func NewDirStore(dir string) *DirStore { return &DirStore{dir: dir} }

func (d *DirStore) path(name string) string { return filepath.Join(d.dir, filepath.FromSlash(name)) }

// Check creates the directory if needed.
func (d *DirStore) Check() error { return os.MkdirAll(d.dir, 0o755) }

// Location is the object's file path.
func (d *DirStore) Location(name string) string { return d.path(name) }

// Get reads a file.
func (d *DirStore) Get(_ context.Context, name string) ([]byte, error) {
	return os.ReadFile(d.path(name))
}

// Put writes a file atomically (temporary file, then rename). Once ctx is
// done nothing is renamed into place: a store attempt past its cut-off
// writes nothing (see writeCutoff).
func (d *DirStore) Put(ctx context.Context, name string, data []byte, _ bool) error {
	tmp, err := d.temp(name, data)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("evidence store: %s not written: %w", name, err)
	}
	if err := os.Rename(tmp, d.path(name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("evidence store: %w", err)
	}
	return nil
}

// Create links a complete temporary file to name, failing with ErrExists
// if name exists (and, as Put, doing nothing once ctx is done).
func (d *DirStore) Create(ctx context.Context, name string, data []byte) error {
	tmp, err := d.temp(name, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("evidence store: %s not created: %w", name, err)
	}
	if err := os.Link(tmp, d.path(name)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", d.path(name), ErrExists)
		}
		return fmt.Errorf("evidence store: %w", err)
	}
	return nil
}

func (d *DirStore) temp(name string, data []byte) (string, error) {
	dir := filepath.Dir(d.path(name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("evidence store: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".evidence-*")
	if err != nil {
		return "", fmt.Errorf("evidence store: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("evidence store: %w", err)
	}
	return tmp.Name(), nil
}

// List walks the directory (temporary files left out).
func (d *DirStore) List(_ context.Context, prefix, startAfter string) ([]string, error) {
	var names []string
	root := d.dir // only the prefix's directory is walked
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		root = d.path(prefix[:i])
	}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".evidence-") {
			return nil
		}
		rel, err := filepath.Rel(d.dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if strings.HasPrefix(name, prefix) && name > startAfter {
			names = append(names, name)
		}
		return nil
	})
	sort.Strings(names)
	return names, err
}
