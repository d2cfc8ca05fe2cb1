package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/lifeboat-dr/lifeboat/activities/evidence"
)

// EvidenceConfig keeps evidence in an S3 bucket with Object Lock, where
// neither the disaster nor an insider can remove it, instead of
// evidenceDir. Any number of workers may share it. Credentials come from
// the AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the shared
// credentials file, the pod's or instance's IAM role) unless
// credentialsFile names a shared credentials file.
type EvidenceConfig struct {
	// URL is s3://BUCKET/PREFIX (LIFEBOAT_EVIDENCE_URL); empty: evidenceDir.
	URL string `yaml:"url"`
	// Endpoint is the S3 endpoint (default s3.amazonaws.com; a URL with
	// http:// for a plain-HTTP test store).
	Endpoint string `yaml:"endpoint"`
	// Region is the bucket's region.
	Region string `yaml:"region"`
	// RetentionDays is how long each record stays locked (required: 2555
	// is seven years).
	RetentionDays int `yaml:"retentionDays"`
	// LockMode is COMPLIANCE (default) or GOVERNANCE.
	LockMode string `yaml:"lockMode"`
	// CredentialsFile is an AWS shared credentials file (a mounted secret);
	// Profile its profile (default "default").
	CredentialsFile string `yaml:"credentialsFile"`
	Profile         string `yaml:"profile"`
}

// EvidenceStore is where evidence.store writes and the CLI reads: the S3
// bucket of evidence.url, or else evidenceDir (nil when neither is set).
func (c Config) EvidenceStore() (evidence.Store, error) {
	e := c.Evidence
	if e.URL == "" {
		if c.EvidenceDir == "" {
			return nil, nil
		}
		return evidence.NewDirStore(c.EvidenceDir), nil
	}
	if e.RetentionDays < 1 {
		return nil, fmt.Errorf("evidence.retentionDays: say how long each record stays locked in %s (e.g. 2555 for seven years); the bucket must have Object Lock enabled", e.URL)
	}
	st, err := evidence.NewS3Store(e.S3Options(e.URL))
	if err != nil {
		return nil, err
	}
	return st, nil
}

// S3Options are the options of a store at url (the configured bucket, or
// another one an auditor verifies) with this configuration's endpoint,
// credentials and lock.
func (e EvidenceConfig) S3Options(url string) evidence.S3Options {
	o := evidence.S3Options{URL: url, Endpoint: e.Endpoint, Region: e.Region, RetentionDays: e.RetentionDays, LockMode: e.LockMode}
	if e.CredentialsFile != "" {
		o.Credentials = credentials.NewFileAWSCredentials(e.CredentialsFile, e.Profile)
	}
	return o
}

// checkEvidence says what is wrong with the evidence location ("": nothing).
func (c Config) checkEvidence() string {
	st, err := c.EvidenceStore()
	switch {
	case err != nil:
		return err.Error()
	case st == nil:
		return "evidenceDir is empty: say where evidence is written (or set LIFEBOAT_EVIDENCE_DIR, or evidence.url)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := reachable(ctx, st); err != nil {
		if _, dir := st.(*evidence.DirStore); dir {
			return fmt.Sprintf("evidenceDir %s: %v", c.EvidenceDir, err)
		}
		return err.Error()
	}
	return ""
}

// reachable says whether an evidence location answers: an S3 bucket
// exists (with Object Lock when records are locked), a directory exists
// or can be made.
func reachable(ctx context.Context, st evidence.Store) error {
	switch s := st.(type) {
	case *evidence.S3Store:
		return s.Check(ctx)
	case *evidence.DirStore:
		return s.Check()
	case nil:
		return errors.New("no evidence location configured")
	}
	return nil
}
