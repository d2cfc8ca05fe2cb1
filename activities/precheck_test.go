package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// One check that never answers does not hold the batch: the batch answers
// before its deadline, that step "did not answer", the others keep their
// results; a check that panics is its step's error.
func TestABatchOfPrechecksAnswersBeforeItsDeadline(t *testing.T) {
	reg := activities.NewWithFuncs(nil)
	reg.SetPrecheck(activities.HTTPCheck, func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
		return []runbooks.CheckResult{runbooks.Pass("answers", "200")}
	})
	hung := make(chan struct{})
	defer close(hung)
	reg.SetPrecheck(activities.KubeScale, func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
		<-hung // ignores its context, as a careless client call would
		return nil
	})
	reg.SetPrecheck(activities.VeleroRestore, func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
		panic("nil map")
	})
	ins := []runbooks.PrecheckInput{
		{StepInput: runbooks.StepInput{StepID: "a"}, Action: activities.HTTPCheck},
		{StepInput: runbooks.StepInput{StepID: "b"}, Action: activities.KubeScale},
		{StepInput: runbooks.StepInput{StepID: "c"}, Action: activities.VeleroRestore},
		{StepInput: runbooks.StepInput{StepID: "d"}, Action: activities.HTTPCheck},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	started := time.Now()
	out, err := reg.Prechecks(ctx, ins)
	require.NoError(t, err)
	assert.Less(t, time.Since(started), 2*time.Second, "answered before the deadline")
	require.Len(t, out, 4)
	for _, i := range []int{0, 3} {
		assert.Empty(t, out[i].Error)
		require.Len(t, out[i].Results, 1)
		assert.True(t, out[i].Results[0].OK)
		assert.Equal(t, ins[i].StepID, out[i].Results[0].Step)
	}
	assert.Contains(t, out[1].Error, "the checks of kube.scale did not answer within")
	assert.Empty(t, out[1].Results)
	assert.Equal(t, "the check of velero.restore panicked: nil map", out[2].Error)
}
