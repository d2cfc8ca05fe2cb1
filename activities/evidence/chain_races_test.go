package evidence_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/activities/evidence"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// hookStore runs hook once, before the first write that match picks, and
// lets answer change what a Create answers and get fail a Get.
type hookStore struct {
	evidence.Store
	mu     sync.Mutex
	match  func(op, name string) bool
	hook   func()
	fired  bool
	answer func(name string, err error) error
	get    func(name string) error
}

func (h *hookStore) Get(ctx context.Context, name string) ([]byte, error) {
	if h.get != nil {
		if err := h.get(name); err != nil {
			return nil, err
		}
	}
	return h.Store.Get(ctx, name)
}

func (h *hookStore) maybe(op, name string) {
	h.mu.Lock()
	fire := !h.fired && h.match != nil && h.match(op, name)
	h.fired = h.fired || fire
	h.mu.Unlock()
	if fire {
		h.hook()
	}
}

func (h *hookStore) Put(ctx context.Context, name string, d []byte, lock bool) error {
	h.maybe("put", name)
	return h.Store.Put(ctx, name, d, lock)
}

func (h *hookStore) Create(ctx context.Context, name string, d []byte) error {
	h.maybe("create", name)
	err := h.Store.Create(ctx, name, d)
	if h.answer != nil {
		err = h.answer(name, err)
	}
	return err
}

func drillEvidence(i int) record.Evidence {
	at := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	return record.Evidence{ID: fmt.Sprint("DR-", i), WorkflowID: fmt.Sprintf("lifeboat-rb-drill-%02d", i), RunID: "r",
		Runbook: record.RunbookRef{Name: "rb", Version: 1}, Mode: "drill", Outcome: "succeeded", StartedAt: at, EndedAt: at.Add(time.Duration(i) * time.Minute)}
}

func mustStore(t *testing.T, s *evidence.Sink, e record.Evidence) {
	t.Helper()
	_, err := s.Store(context.Background(), runbooks.StepInput{Args: map[string]any{"evidence": e}})
	require.NoError(t, err)
}

func cleanChain(t *testing.T, dir string, keys []proof.AllowedSigner, records int) {
	t.Helper()
	rep, err := evidence.Verify([]string{dir}, keys)
	require.NoError(t, err)
	assert.Empty(t, rep.Findings)
	assert.Equal(t, records, rep.Records)
	assert.Equal(t, records, rep.Positions)
}

// A Create that landed but whose answer was lost, so the S3 client's own
// retry met If-None-Match and answered "exists": the position is the
// store's own, and the record it vouches for is not sealed again.
func TestAStoreWhoseOwnPositionAnswersExistsIsDone(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	once := false
	h := &hookStore{Store: evidence.NewDirStore(dir), answer: func(name string, err error) error {
		if err == nil && !once {
			once = true
			return fmt.Errorf("412 Precondition Failed on the client's retry: %w", evidence.ErrExists)
		}
		return err
	}}
	mustStore(t, evidence.NewSink(h).WithKey(key), drillEvidence(0))
	mustStore(t, evidence.NewDirSink(dir).WithKey(key), drillEvidence(1))
	cleanChain(t, dir, []proof.AllowedSigner{workerSigner(key)}, 2)
}

// A Create that landed answering "exists" (S3's 412 on the client's
// retry), the read of the position it met failing, and another worker
// appending after it meanwhile: the store cannot tell the position is its
// own, so it must not take it for the other worker's and seal its record
// again after the newer one — that rewrote the record position 1 vouches
// for, broke the link of the record chained to it, and took a second
// position. It fails instead, and its retry finds the record in place.
func TestAStoreThatCannotReadThePositionItMetDoesNotSealItsRecordAgain(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	plain := evidence.NewDirStore(dir)
	first := ".chain/rb/0000000001.json"
	landed, failed := false, false
	h := &hookStore{Store: plain}
	h.answer = func(name string, err error) error {
		if name == first && err == nil && !landed {
			landed = true
			mustStore(t, evidence.NewSink(plain).WithKey(key), drillEvidence(1)) // another worker, after it
			return fmt.Errorf("412 Precondition Failed on the client's retry: %w", evidence.ErrExists)
		}
		return err
	}
	h.get = func(name string) error {
		if name == first && landed && !failed {
			failed = true
			return errInjected
		}
		return nil
	}
	_, err := evidence.NewSink(h).WithKey(key).Store(context.Background(), runbooks.StepInput{Args: map[string]any{"evidence": drillEvidence(0)}})
	require.True(t, failed, "the read of the position met failed")
	if err != nil {
		require.ErrorIs(t, err, errInjected)
		mustStore(t, evidence.NewSink(h).WithKey(key), drillEvidence(0)) // the activity's retry
	}
	cleanChain(t, dir, []proof.AllowedSigner{workerSigner(key)}, 2)
	assert.Error(t, err, "the attempt that could not tell fails, to be retried")
}

// Two attempts of one store at once (Temporal retried it while the first
// still ran): the second takes the position, the first finds it its own;
// one record, one position.
func TestTwoAttemptsOfOneStoreLeaveOneRecordAtOnePosition(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	plain := evidence.NewDirStore(dir)
	h := &hookStore{Store: plain, match: func(op, _ string) bool { return op == "create" }}
	h.hook = func() { mustStore(t, evidence.NewSink(plain).WithKey(key), drillEvidence(0)) }
	mustStore(t, evidence.NewSink(h).WithKey(key), drillEvidence(0))
	cleanChain(t, dir, []proof.AllowedSigner{workerSigner(key)}, 1)
}

// An object written into a chain by hand: verify names it, and a store
// after it fails at once saying why instead of racing it until its
// deadline.
func TestAnObjectWrittenIntoTheChainIsNamedAndStopsStoresWithAReason(t *testing.T) {
	dir, _, keys := sealedDir(t)
	chain := filepath.Join(dir, ".chain", "rb")
	first, err := os.ReadFile(filepath.Join(chain, "0000000001.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(chain, "7.json"), first, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(chain, "0000000009.json"), first, 0o644))
	got := strings.Join(findings(t, []string{dir}, keys), "\n")
	assert.Contains(t, got, "7.json: in runbook rb's chain but neither a position (ten digits) nor its head")
	assert.Contains(t, got, "0000000009.json: seq: the statement says position 1")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	started := time.Now()
	_, err = evidence.NewDirSink(dir).WithKey(newKey(t)).Store(ctx, runbooks.StepInput{Args: map[string]any{"evidence": drillEvidence(9)}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "0000000009.json is not position 9 of runbook rb's chain (its statement says position 1")
	assert.Less(t, time.Since(started), 5*time.Second, "failed at once, not at its deadline")
}

func workerSigner(key ssh.Signer) proof.AllowedSigner {
	return proof.AllowedSigner{Principals: []string{record.WorkerPrincipal}, Key: authorized(key)}
}

// isRecordPut picks the write of a record itself (not its chain position).
func isRecordPut(op, name string) bool {
	return op == "put" && strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, ".chain/")
}

// An attempt of a store that Temporal timed out is still writing (its
// record sealed at position 1) when its retry runs on another worker, after
// another run's record took position 1: the retry chains the record at
// position 2. The stale write must not land over it — the record position 2
// vouches for would read as edited.
func TestAStoreAttemptPastItsDeadlineDoesNotOverwriteItsRetrysRecord(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	plain := evidence.NewDirStore(dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	h := &hookStore{Store: plain, match: isRecordPut}
	h.hook = func() {
		time.Sleep(time.Until(deadline) + 50*time.Millisecond) // the server timed the attempt out
		mustStore(t, evidence.NewSink(plain).WithKey(key), drillEvidence(1))
		mustStore(t, evidence.NewSink(plain).WithKey(key), drillEvidence(0)) // the retry
	}
	_, err := evidence.NewSink(h).WithKey(key).Store(ctx, runbooks.StepInput{Args: map[string]any{"evidence": drillEvidence(0)}})
	require.Error(t, err, "the timed-out attempt fails")
	cleanChain(t, dir, []proof.AllowedSigner{workerSigner(key)}, 2)
}

// A write still outstanding when the attempt's deadline nears may land
// late: an attempt starts no write in the last quarter of its time (at most
// 10 s), and returns only at its deadline — had it returned its failure at
// once, Temporal would start the retry a second later, while a write it
// cancelled might still land.
func TestAStoreAttemptWritesNothingInTheLastOfItsTime(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	h := &hookStore{Store: evidence.NewDirStore(dir), match: isRecordPut}
	h.hook = func() { time.Sleep(time.Until(deadline.Add(-500 * time.Millisecond))) } // past the cut-off, before the deadline
	_, err := evidence.NewSink(h).WithKey(key).Store(ctx, runbooks.StepInput{Args: map[string]any{"evidence": drillEvidence(0)}})
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, time.Now().Before(deadline), "the cut attempt returned %v before its deadline", time.Until(deadline))
	records, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	assert.Empty(t, records, "nothing written: the retry stores the record")
}
