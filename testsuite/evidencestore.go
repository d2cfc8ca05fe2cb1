package testsuite

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// EvidenceBucket is the rig's bucket for evidence, made with Object Lock on.
const EvidenceBucket = "lifeboat-evidence"

// StartLockingObjectStore starts an S3 server as S3 keeps evidence:
// versitygw with versioning (Object Lock needs it: a delete hides a
// version behind a marker, a write adds one, a locked version stays), and
// EvidenceBucket created with Object Lock enabled.
func StartLockingObjectStore(ctx context.Context, dir string, progress io.Writer) (*ObjectStore, error) {
	bin, err := ensureVersityGW(ctx, progress)
	if err != nil {
		return nil, err
	}
	versions := filepath.Join(dir, "s3-versions")
	for _, d := range []string{filepath.Join(dir, "s3"), versions} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	o, err := startVersity(ctx, dir, bin, "--versioning-dir", versions)
	if err != nil {
		return nil, err
	}
	c, err := o.Client()
	if err == nil {
		err = c.MakeBucket(ctx, EvidenceBucket, minio.MakeBucketOptions{ObjectLocking: true})
	}
	if err != nil {
		o.Stop()
		return nil, fmt.Errorf("creating the evidence bucket: %w", err)
	}
	return o, nil
}

// Credentials are the rig store's keys.
func (o *ObjectStore) Credentials() *credentials.Credentials {
	return credentials.NewStaticV4(s3Access, s3Secret, "")
}

// CredentialsFile writes the rig store's keys as an AWS shared
// credentials file (what a worker's evidence.credentialsFile names).
func (o *ObjectStore) CredentialsFile(path string) error {
	return os.WriteFile(path, fmt.Appendf(nil, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", s3Access, s3Secret), 0o600)
}

// Client is an S3 client of the rig's store, with its keys: what an
// attacker holding them can do.
func (o *ObjectStore) Client() (*minio.Client, error) {
	return minio.New(o.URL[len("http://"):], &minio.Options{Creds: o.Credentials(), Secure: false})
}
