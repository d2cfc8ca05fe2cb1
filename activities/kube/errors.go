package kube

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// classify turns an API error into a retryable error, or a non-retryable
// application error when retrying cannot help (forbidden, invalid, unauthorized).
func classify(action string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case apierrors.IsForbidden(err):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v — the worker's credentials lack this permission: grant it in the target cluster's RBAC", action, err), "Forbidden", nil)
	case apierrors.IsUnauthorized(err):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v — the worker's kube credentials were refused: check the kubeconfig of this target", action, err), "Unauthorized", nil)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v — fix the manifest or the step's arguments", action, err), "Invalid", nil)
	}
	return fmt.Errorf("%s: %w", action, err)
}

// badArgs is a non-retryable error about a step's arguments or target.
func badArgs(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), "InvalidArgument", nil)
}

// clientFor resolves the step's target to a cluster client.
func (a *Actions) clientFor(in runbooks.StepInput, target string) (*Client, error) {
	t, ok := in.Targets[target]
	if !ok || t.KubeContext == "" {
		return nil, badArgs("target %q has no kubeContext in the runbook's spec.targets", target)
	}
	c, err := a.Source.For(t.KubeContext)
	if err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) {
			return nil, err
		}
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "ConfigError", nil)
	}
	return c, nil
}

// ClientFor resolves a step's target to a cluster client; other actions that
// work through Kubernetes (velero, argocd) use it too.
func ClientFor(src Source, in runbooks.StepInput, target string) (*Client, error) {
	return (&Actions{Source: src}).clientFor(in, target)
}

// Heartbeat records progress when running as an activity.
func Heartbeat(ctx context.Context, details string) { heartbeat(ctx, details) }

// BeforeDeadline returns a context ending shortly before ctx's deadline, so a
// wait that runs out of time can still report what it was waiting for.
func BeforeDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, dl.Add(-min(2*time.Second, time.Until(dl)/5)))
}
