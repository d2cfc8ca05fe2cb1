package activities_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// A teardown, failback or re-enactment reads a past run from Temporal; when
// Temporal does not answer, or the worker's allowed signers cannot be read,
// the start is not refused (a refused run closes for good, as a refusal of
// its request): the error is retryable, and a run that never gets an answer
// fails as an outage. An answer about the run (no such run) is a refusal.
func TestAPastRunThatCannotBeReadIsNoRefusal(t *testing.T) {
	starts := []runbooks.ResolveInput{
		{Mode: "teardown", TeardownOf: "D"},
		{Mode: "failback", FailbackOf: "F"},
		{Mode: "drill", Inline: tabletopText, ReenactmentOf: "R"},
	}
	resolver := func(readErr error) *activities.Resolver {
		return &activities.Resolver{Registry: activities.Catalogue(),
			Drills: func(context.Context, string) (runbooks.Resolved, string, error) {
				return runbooks.Resolved{}, "", readErr
			},
			Records: func(context.Context, string) (runbooks.Resolved, record.Evidence, error) {
				return runbooks.Resolved{}, record.Evidence{}, readErr
			}}
	}
	unavailable := fmt.Errorf("reading the history of D: %w", serviceerror.NewUnavailable("connection refused"))
	notFound := fmt.Errorf("reading the history of D: %w", serviceerror.NewNotFound("workflow not found"))
	for _, in := range starts {
		_, err := resolver(unavailable).Resolve(context.Background(), in)
		var ae *temporal.ApplicationError
		require.ErrorAs(t, err, &ae, in.Mode)
		assert.False(t, ae.NonRetryable(), "%s: Temporal did not answer, yet the start is refused: %v", in.Mode, err)

		_, err = resolver(notFound).Resolve(context.Background(), in)
		require.ErrorAs(t, err, &ae, in.Mode)
		assert.True(t, ae.NonRetryable(), "%s: no such run is an answer: %v", in.Mode, err)
	}

	r := &activities.Resolver{Registry: activities.Catalogue(),
		Signers: func() ([]proof.AllowedSigner, error) {
			return nil, errors.New("open /etc/lifeboat/allowed_signers: no such file")
		}}
	_, err := r.Resolve(context.Background(), runbooks.ResolveInput{Mode: "tabletop", Inline: tabletopText})
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	assert.Contains(t, ae.Message(), "allowed signers cannot be read")
	assert.False(t, ae.NonRetryable(), "the worker's own file: an outage, not a refusal")
}

const tabletopText = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: t, version: 1}
spec:
  scope: application
  objectives: {rto: 60m}
  layers:
    edge:
      - {id: check, action: http.check, with: {url: "http://a"}}
`
