package evidence

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Options says where in S3 evidence is kept and for how long it is locked.
type S3Options struct {
	// URL is s3://BUCKET/PREFIX.
	URL string
	// Endpoint is the S3 endpoint: host[:port], or a URL whose scheme says
	// http or https (default: s3.amazonaws.com over https).
	Endpoint string
	// Region is the bucket's region ("": the client asks the endpoint).
	Region string
	// RetentionDays is how long each record, signature and chain position
	// is locked (S3 Object Lock) from the moment it is written; 0: not
	// locked (then the bucket must not require it either).
	RetentionDays int
	// LockMode is COMPLIANCE (default: nobody, root included, can shorten
	// or remove the lock) or GOVERNANCE (those allowed to bypass it can).
	LockMode string
	// Credentials signs the requests (nil: the AWS chain: the
	// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY environment, the shared
	// credentials file, then the instance's or pod's IAM role).
	Credentials *credentials.Credentials
}

// S3Store is a Store in an S3 bucket (minio-go). Create is a PUT with
// If-None-Match: * — S3, and versitygw, let only one such PUT of a key
// succeed — so the chain of records never forks whatever the number of
// workers. Final records, their signatures and chain positions are locked
// for RetentionDays: deleting one only hides it behind a delete marker
// (verify reports it missing) and replacing it adds a version (verify
// reports it changed); the locked version stays readable until the
// retention ends, by anyone, and deletable by no one.
type S3Store struct {
	c              *minio.Client
	bucket, prefix string
	o              S3Options
}

// NewS3Store connects to the bucket of o.URL (no request is made yet).
func NewS3Store(o S3Options) (*S3Store, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("evidence location %q: use s3://BUCKET/PREFIX", o.URL)
	}
	switch strings.ToUpper(o.LockMode) {
	case "", "COMPLIANCE":
		o.LockMode = string(minio.Compliance)
	case "GOVERNANCE":
		o.LockMode = string(minio.Governance)
	default:
		return nil, fmt.Errorf("evidence lock mode %q: use COMPLIANCE or GOVERNANCE", o.LockMode)
	}
	host, secure := o.Endpoint, true
	if host == "" {
		host = "s3.amazonaws.com"
	}
	if e, err := url.Parse(host); err == nil && (e.Scheme == "http" || e.Scheme == "https") {
		host, secure = e.Host, e.Scheme == "https"
	}
	creds := o.Credentials
	if creds == nil {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}, &credentials.IAM{Client: &http.Client{Transport: http.DefaultTransport}},
		})
	}
	c, err := minio.New(host, &minio.Options{Creds: creds, Secure: secure, Region: o.Region})
	if err != nil {
		return nil, fmt.Errorf("evidence location %s: %w", o.URL, err)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3Store{c: c, bucket: u.Host, prefix: prefix, o: o}, nil
}

// Check makes sure the bucket is there and, when records are to be
// locked, that it has Object Lock on (it can only be turned on when a
// bucket is created).
func (s *S3Store) Check(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		if minio.ToErrorResponse(err).StatusCode == http.StatusBadRequest {
			// A HEAD's 400 has no body to say why; the usual cause is a
			// request signed for another region.
			return fmt.Errorf("evidence bucket %s: %w: is evidence.region (%q) the region the endpoint answers for? (MinIO and most S3-compatible servers: us-east-1)", s.bucket, err, s.o.Region)
		}
		return fmt.Errorf("evidence bucket %s: %w", s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("evidence bucket %s does not exist: create it with Object Lock enabled (aws s3api create-bucket --object-lock-enabled-for-bucket)", s.bucket)
	}
	if s.o.RetentionDays == 0 {
		return nil
	}
	enabled, _, _, _, err := s.c.GetObjectLockConfig(ctx, s.bucket)
	if err != nil || enabled != "Enabled" {
		return fmt.Errorf("evidence bucket %s has no Object Lock (%v): records could be deleted; create the bucket with Object Lock enabled, or set evidence.retentionDays: 0 to keep them unlocked", s.bucket, err)
	}
	return nil
}

// Location is the object's s3:// URL.
func (s *S3Store) Location(name string) string { return "s3://" + s.bucket + "/" + s.prefix + name }

// Get reads an object.
func (s *S3Store) Get(ctx context.Context, name string) ([]byte, error) {
	obj, err := s.c.GetObject(ctx, s.bucket, s.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.err(name, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		return nil, s.err(name, err)
	}
	return b, nil
}

// Put writes an object, locked for the retention when lock is set.
func (s *S3Store) Put(ctx context.Context, name string, data []byte, lock bool) error {
	return s.put(ctx, name, data, s.options(lock))
}

// Create writes an object only if the key has none (If-None-Match: *).
func (s *S3Store) Create(ctx context.Context, name string, data []byte) error {
	opts := s.options(true)
	opts.SetMatchETagExcept("*")
	return s.put(ctx, name, data, opts)
}

func (s *S3Store) options(lock bool) minio.PutObjectOptions {
	var opts minio.PutObjectOptions
	if lock && s.o.RetentionDays > 0 {
		opts.Mode = minio.RetentionMode(s.o.LockMode)
		opts.RetainUntilDate = time.Now().Add(time.Duration(s.o.RetentionDays) * 24 * time.Hour).UTC()
	}
	return opts
}

func (s *S3Store) put(ctx context.Context, name string, data []byte, opts minio.PutObjectOptions) error {
	opts.ContentType = "text/plain; charset=utf-8" // Markdown, signatures
	if path.Ext(name) == ".json" {
		opts.ContentType = "application/json"
	}
	_, err := s.c.PutObject(ctx, s.bucket, s.prefix+name, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return s.err(name, err)
	}
	return nil
}

// List lists the keys under prefix, after startAfter.
func (s *S3Store) List(ctx context.Context, prefix, startAfter string) ([]string, error) {
	opts := minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}
	if startAfter != "" {
		opts.StartAfter = s.prefix + startAfter
	}
	var names []string
	for o := range s.c.ListObjects(ctx, s.bucket, opts) {
		if o.Err != nil {
			return nil, s.err(prefix, o.Err)
		}
		names = append(names, strings.TrimPrefix(o.Key, s.prefix))
	}
	return names, nil
}

// err maps S3's answers to the Store's: no such key is fs.ErrNotExist,
// a failed If-None-Match is ErrExists.
func (s *S3Store) err(name string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey":
		return fmt.Errorf("%s: %w", s.Location(name), fs.ErrNotExist)
	case resp.StatusCode == http.StatusPreconditionFailed || resp.Code == "PreconditionFailed" || resp.Code == "ConditionalRequestConflict":
		return fmt.Errorf("%s: %w", s.Location(name), ErrExists)
	}
	return fmt.Errorf("%s: %w", s.Location(name), err)
}

// Hidden is what a listing of the bucket's current objects does not show
// and the bucket's versions do: an object deleted (a delete marker is its
// newest version; its earlier versions, locked, are still there), or a
// chain position written more than once (a position is created once).
type Hidden struct {
	Name string
	// Deleted: a delete marker hides the object; Kept is its newest
	// version under the marker ("" when none is left).
	Deleted bool
	Kept    string
	// Versions of a position (more than one: written again).
	Versions int
}

// Hidden lists the deleted objects and the positions written more than
// once under the store's prefix, from the bucket's versions (Object Lock
// needs versioning, so a locked bucket always has them).
func (s *S3Store) Hidden(ctx context.Context) ([]Hidden, error) {
	type seen struct {
		latestDeleted bool
		kept          string
		versions      int
	}
	byName := map[string]*seen{}
	var order []string
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			return nil, s.err("", o.Err)
		}
		name := strings.TrimPrefix(o.Key, s.prefix)
		v, ok := byName[name]
		if !ok {
			v = &seen{}
			byName[name] = v
			order = append(order, name)
		}
		switch {
		case o.IsLatest && o.IsDeleteMarker:
			v.latestDeleted = true
		case !o.IsDeleteMarker:
			v.versions++
			if v.kept == "" {
				v.kept = o.VersionID // versions come newest first
			}
		}
	}
	var out []Hidden
	for _, name := range order {
		v := byName[name]
		switch {
		case v.latestDeleted:
			out = append(out, Hidden{Name: name, Deleted: true, Kept: v.kept, Versions: v.versions})
		case seqOf(name) > 0 && strings.HasPrefix(name, chainDir) && v.versions > 1:
			out = append(out, Hidden{Name: name, Versions: v.versions})
		}
	}
	return out, nil
}
