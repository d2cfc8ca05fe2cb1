// Package attempt carries what an action read before it changed anything
// from one attempt of its activity to the next, in Temporal's heartbeat
// details: a retried attempt then reports the value from before the run,
// not the one its first attempt wrote.
package attempt

import (
	"context"

	"go.temporal.io/sdk/activity"
)

// Carried fills v with what an earlier attempt recorded and reports whether
// there was any (never outside an activity).
func Carried(ctx context.Context, v any) bool {
	if !activity.IsActivity(ctx) || !activity.HasHeartbeatDetails(ctx) {
		return false
	}
	return activity.GetHeartbeatDetails(ctx, v) == nil
}

// Record keeps v for later attempts. Call it once, after reading and before
// changing anything: the SDK sends an activity's first heartbeat at once.
func Record(ctx context.Context, v any) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, v)
	}
}
