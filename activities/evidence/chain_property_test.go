package evidence_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/activities/evidence"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
)

// faultyStore is a store whose reads and writes fail at random, as a
// worker dies or a network drops: a write before it happens, or after it
// (the write is done, its answer lost), or a Create that landed answering
// "exists". Each writer has its own seeded source, so the
// faults a seed gives each writer are the same on every run.
type faultyStore struct {
	evidence.Store
	rnd   *rand.Rand
	p     float64 // chance of a fault per write
	fault int     // faults given
}

var errInjected = errors.New("injected fault")

func (f *faultyStore) write(do func() error) error {
	switch r := f.rnd.Float64(); {
	case r < f.p/2:
		f.fault++
		return errInjected // died before the write
	case r < f.p:
		f.fault++
		if err := do(); err != nil {
			return err
		}
		return errInjected // the write happened; its answer was lost
	}
	return do()
}

// Get fails at random too (reads have no side effect to lose).
func (f *faultyStore) Get(ctx context.Context, name string) ([]byte, error) {
	if f.rnd.Float64() < f.p/2 {
		f.fault++
		return nil, errInjected
	}
	return f.Store.Get(ctx, name)
}

func (f *faultyStore) Put(ctx context.Context, name string, data []byte, lock bool) error {
	return f.write(func() error { return f.Store.Put(ctx, name, data, lock) })
}

// Create has a third fault: it lands, its answer is lost, and the
// client's own retry meets the condition and answers "exists" (S3's 412).
func (f *faultyStore) Create(ctx context.Context, name string, data []byte) error {
	if f.rnd.Float64() < f.p/3 {
		f.fault++
		if err := f.Store.Create(ctx, name, data); err != nil {
			return err
		}
		return fmt.Errorf("412 on the client's retry: %w", evidence.ErrExists)
	}
	return f.write(func() error { return f.Store.Create(ctx, name, data) })
}

// A property of the chain, over generated runs: any number of workers
// storing final records at once into one store, each write failing at
// random before or after it happens and each failed store retried (as the
// activity is), leave one chain — every record at its own position, each
// after the one before, the head on the newest — that verifies with no
// finding, whatever the seed.
func TestTheChainSurvivesConcurrentStoresWithFaults(t *testing.T) {
	for seed := uint64(1); seed <= 24; seed++ {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			gen := rand.New(rand.NewPCG(seed, 0))
			workers := 1 + gen.IntN(3)
			records := 2 + gen.IntN(14)
			p := gen.Float64() * 0.4
			dir := t.TempDir()
			var keys []proof.AllowedSigner
			var sinks []*evidence.Sink
			var stores []*faultyStore
			for w := range workers {
				key := newKey(t)
				keys = append(keys, workerSigner(key))
				st := &faultyStore{Store: evidence.NewDirStore(dir), rnd: rand.New(rand.NewPCG(seed, uint64(w+1))), p: p}
				stores = append(stores, st)
				sinks = append(sinks, evidence.NewSink(st).WithKey(key))
			}
			var mu []sync.Mutex = make([]sync.Mutex, workers) // a worker's faults come from one source
			var wg sync.WaitGroup
			errs := make(chan error, records)
			for i := range records {
				wg.Add(1)
				go func() {
					defer wg.Done()
					w := i % workers
					ev := drillEvidence(i)
					for attempt := 1; ; attempt++ { // the activity's retries
						mu[w].Lock()
						_, err := sinks[w].Store(context.Background(), runbooks.StepInput{Args: map[string]any{"evidence": ev}})
						mu[w].Unlock()
						if err == nil {
							errs <- nil
							return
						}
						if !errors.Is(err, errInjected) || attempt == 200 {
							errs <- fmt.Errorf("record %d, attempt %d: %w", i, attempt, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			faults := 0
			for _, st := range stores {
				faults += st.fault
			}
			rep, err := evidence.Verify([]string{dir}, keys)
			require.NoError(t, err)
			assert.Empty(t, rep.Findings, "%d workers, %d records, %d faults", workers, records, faults)
			assert.Equal(t, records, rep.Records)
			assert.Equal(t, records, rep.Positions)
			assert.Equal(t, records-1, rep.Links)
		})
	}
}
