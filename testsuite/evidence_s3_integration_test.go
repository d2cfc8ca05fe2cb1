//go:build integration

package testsuite_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/activities/evidence"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/testsuite"
)

func workerKey(t *testing.T) (ssh.Signer, proof.AllowedSigner) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	s, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return s, proof.AllowedSigner{Principals: []string{record.WorkerPrincipal}, Key: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))}
}

// TestEvidenceInALockedBucket: two workers, each with its own key and S3
// client, store 20 records at once into a bucket with Object Lock (real S3
// semantics, versitygw): one chain, no fork, every record verifies. Then
// an attacker holding the bucket's keys deletes the newest record and
// overwrites another: verify names both, and the locked originals are
// still there and cannot be removed before their retention ends.
func TestEvidenceInALockedBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o, err := testsuite.StartLockingObjectStore(ctx, t.TempDir(), io.Discard)
	require.NoError(t, err)
	t.Cleanup(o.Stop)
	store := func() *evidence.S3Store {
		st, err := evidence.NewS3Store(evidence.S3Options{URL: "s3://" + testsuite.EvidenceBucket + "/dr", Endpoint: o.URL, RetentionDays: 1, Credentials: o.Credentials()})
		require.NoError(t, err)
		require.NoError(t, st.Check(ctx))
		return st
	}
	keyA, signerA := workerKey(t)
	keyB, signerB := workerKey(t)
	sinks := []*evidence.Sink{evidence.NewSink(store()).WithKey(keyA), evidence.NewSink(store()).WithKey(keyB)}
	at := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := record.Evidence{ID: fmt.Sprintf("DR-%d", i), WorkflowID: fmt.Sprintf("lifeboat-rb-drill-%02d", i), RunID: "r",
				Runbook: record.RunbookRef{Name: "rb", Version: 1}, Mode: "drill", Outcome: "succeeded", StartedAt: at, EndedAt: at.Add(time.Duration(i) * time.Minute)}
			_, err := sinks[i%2].Store(ctx, runbooks.StepInput{Args: map[string]any{"evidence": ev}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	keys := []proof.AllowedSigner{signerA, signerB}
	rep, err := evidence.VerifyStore(ctx, store(), keys)
	require.NoError(t, err)
	assert.Empty(t, rep.Findings)
	assert.Equal(t, 20, rep.Positions)
	assert.Equal(t, 19, rep.Links)

	st := store()
	require.ErrorIs(t, st.Create(ctx, ".chain/rb/0000000020.json", []byte("{}")), evidence.ErrExists, "a position is taken once")

	c, err := o.Client()
	require.NoError(t, err)
	head, err := st.Get(ctx, ".chain/rb/head.json")
	require.NoError(t, err)
	var h struct{ Statement string }
	require.NoError(t, json.Unmarshal(head, &h))
	var p struct{ File string }
	require.NoError(t, json.Unmarshal([]byte(h.Statement), &p))
	// The stores ran at once, so any record may be the newest: the one
	// overwritten is another.
	otherFile := "lifeboat-rb-drill-03.r.json"
	if p.File == otherFile {
		otherFile = "lifeboat-rb-drill-04.r.json"
	}
	newest, other := "dr/"+p.File, "dr/"+otherFile
	original, err := st.Get(ctx, p.File)
	require.NoError(t, err)

	// The attacker: delete the newest record, overwrite another.
	require.NoError(t, c.RemoveObject(ctx, testsuite.EvidenceBucket, newest, minio.RemoveObjectOptions{}))
	_, err = c.PutObject(ctx, testsuite.EvidenceBucket, other, strings.NewReader(`{"workflowId":"x"}`), -1, minio.PutObjectOptions{})
	require.NoError(t, err)
	rep, err = evidence.VerifyStore(ctx, store(), keys)
	require.NoError(t, err)
	got := fmt.Sprint(rep.Findings)
	assert.Contains(t, got, p.File+": the record at position 20 of runbook rb is missing (deleted?)")
	assert.Contains(t, got, otherFile+": the record at position")
	assert.Contains(t, got, "was changed after it was stored")

	// What the lock keeps: the deleted record's version is there, readable,
	// and neither it nor its retention can be removed.
	var kept []minio.ObjectInfo
	for v := range c.ListObjects(ctx, testsuite.EvidenceBucket, minio.ListObjectsOptions{Prefix: newest, WithVersions: true}) {
		require.NoError(t, v.Err)
		if !v.IsDeleteMarker {
			kept = append(kept, v)
		}
	}
	require.NotEmpty(t, kept, "the deleted record's locked version")
	last := kept[0]
	obj, err := c.GetObject(ctx, testsuite.EvidenceBucket, newest, minio.GetObjectOptions{VersionID: last.VersionID})
	require.NoError(t, err)
	b, err := io.ReadAll(obj)
	require.NoError(t, err)
	assert.Equal(t, string(original), string(b), "the locked version is the record as stored")
	err = c.RemoveObject(ctx, testsuite.EvidenceBucket, newest, minio.RemoveObjectOptions{VersionID: last.VersionID, GovernanceBypass: true})
	require.Error(t, err, "a locked version cannot be deleted before its retention ends, bypass or not")
	// The version's retention, as the server states it (GET ?retention,
	// presigned: versitygw v1.8.0 names the element ObjectLockRetention,
	// which minio-go's GetObjectRetention refuses to decode).
	u, err := c.Presign(ctx, http.MethodGet, testsuite.EvidenceBucket, newest, time.Minute, url.Values{"retention": {""}, "versionId": {last.VersionID}})
	require.NoError(t, err)
	resp, err := http.Get(u.String())
	require.NoError(t, err)
	defer resp.Body.Close()
	var retention struct {
		Mode            string
		RetainUntilDate time.Time
	}
	require.NoError(t, xml.NewDecoder(resp.Body).Decode(&retention))
	assert.Equal(t, "COMPLIANCE", retention.Mode)
	assert.WithinDuration(t, time.Now().Add(24*time.Hour), retention.RetainUntilDate, time.Hour)

	// The whole tail cut off: the newest position deleted too and the head
	// put back to the one before — what a plain directory cannot show
	// without Temporal, the bucket's versions do.
	prev, err := st.Get(ctx, ".chain/rb/0000000019.json")
	require.NoError(t, err)
	require.NoError(t, c.RemoveObject(ctx, testsuite.EvidenceBucket, "dr/.chain/rb/0000000020.json", minio.RemoveObjectOptions{}))
	_, err = c.PutObject(ctx, testsuite.EvidenceBucket, "dr/.chain/rb/head.json", strings.NewReader(string(prev)), -1, minio.PutObjectOptions{})
	require.NoError(t, err)
	rep, err = evidence.VerifyStore(ctx, store(), keys)
	require.NoError(t, err)
	got = fmt.Sprint(rep.Findings)
	assert.Contains(t, got, "0000000020.json: deleted: a delete marker hides it; its version ")
	assert.Contains(t, got, p.File+": deleted: a delete marker hides it; its version "+last.VersionID)

	// A bucket without Object Lock is refused when records are to be locked.
	require.NoError(t, c.MakeBucket(ctx, "plain", minio.MakeBucketOptions{}))
	plain, err := evidence.NewS3Store(evidence.S3Options{URL: "s3://plain/dr", Endpoint: o.URL, RetentionDays: 1, Credentials: o.Credentials()})
	require.NoError(t, err)
	assert.ErrorContains(t, plain.Check(ctx), "evidence bucket plain has no Object Lock")
}
