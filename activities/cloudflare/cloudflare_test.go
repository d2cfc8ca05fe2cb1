package cloudflare_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/lifeboat-dr/lifeboat/activities/cloudflare"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	emu "github.com/lifeboat-dr/lifeboat/testsuite/cloudflare"
)

func appErr(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "want an application error, got %v", err)
	return ae
}

func setup(t *testing.T, token string) (*emu.Emulator, *emu.Zone, *cloudflare.Actions) {
	e, err := emu.Start()
	require.NoError(t, err)
	t.Cleanup(e.Close)
	e.AddToken("dns-token", emu.ZoneRead, emu.DNSEdit)
	e.AddToken("lb-token", emu.ZoneRead, emu.LBEdit)
	e.AddToken("read-only", emu.ZoneRead)
	z := e.AddZone("example.com")
	a := &cloudflare.Actions{Token: func() (string, error) { return token, nil }, BaseURL: e.URL}
	return e, z, a
}

func switchIn(to string) runbooks.StepInput {
	return runbooks.StepInput{WorkflowID: "lifeboat-x-failover-abc123", StepID: "shift-traffic",
		Args: map[string]any{"zone": "example.com", "record": "case.example.com", "to": to, "ttl": 30}}
}

func TestDNSSwitchPointsAtDRAndReturnsThePreviousValue(t *testing.T) {
	e, z, a := setup(t, "dns-token")
	e.AddRecord(z, "CNAME", "case.example.com", "primary-lb.ca-central-1.example.com", 300)
	ctx := context.Background()

	res, err := a.DNSSwitch(ctx, switchIn("dr-lb.ca-west-1.example.com"))
	require.NoError(t, err)
	prev := map[string]any{"type": "CNAME", "content": "primary-lb.ca-central-1.example.com", "ttl": 300, "proxied": false}
	assert.Equal(t, prev, res.Outputs["previous"])
	recs := e.Records(z, "case.example.com")
	require.Len(t, recs, 1)
	assert.Equal(t, "dr-lb.ca-west-1.example.com", recs[0].Content)
	assert.Equal(t, 30, recs[0].TTL)

	// a retry (e.g. after a worker crash) changes nothing and still reports the true previous value
	calls := len(e.Calls())
	res, err = a.DNSSwitch(ctx, switchIn("dr-lb.ca-west-1.example.com"))
	require.NoError(t, err)
	assert.Equal(t, prev, res.Outputs["previous"])
	for _, c := range e.Calls()[calls:] {
		assert.NotContains(t, c, "PATCH", "an idempotent re-run must not write")
	}

	// a failback step restores the previous value
	res, err = a.DNSSwitch(ctx, switchIn("primary-lb.ca-central-1.example.com"))
	require.NoError(t, err)
	assert.Equal(t, "primary-lb.ca-central-1.example.com", e.Records(z, "case.example.com")[0].Content)
}

func TestDNSSwitchFromAnARecordToACNAME(t *testing.T) {
	e, z, a := setup(t, "dns-token")
	e.AddRecord(z, "A", "case.example.com", "203.0.113.10", 60)
	res, err := a.DNSSwitch(context.Background(), switchIn("dr-lb.example.com"))
	require.NoError(t, err)
	assert.Equal(t, "A", res.Outputs["previous"].(map[string]any)["type"])
	recs := e.Records(z, "case.example.com")
	require.Len(t, recs, 1)
	assert.Equal(t, "CNAME", recs[0].Type)
}

func TestDNSSwitchWithATokenWithoutDNSEditIsNotRetryable(t *testing.T) {
	e, z, a := setup(t, "read-only")
	e.AddRecord(z, "CNAME", "case.example.com", "primary.example.com", 300)
	_, err := a.DNSSwitch(context.Background(), switchIn("dr.example.com"))
	ae := appErr(t, err)
	assert.True(t, ae.NonRetryable())
	assert.Contains(t, err.Error(), "403")
	assert.Contains(t, err.Error(), "the API token lacks the permission")
	assert.Equal(t, "primary.example.com", e.Records(z, "case.example.com")[0].Content)
}

func TestDNSSwitchRateLimitedIsRetryableAfterRetryAfter(t *testing.T) {
	e, z, a := setup(t, "dns-token")
	e.AddRecord(z, "CNAME", "case.example.com", "primary.example.com", 300)
	e.FailNext(3, 429, 2, "dns_records") // more than the SDK's own retry
	_, err := a.DNSSwitch(context.Background(), switchIn("dr.example.com"))
	ae := appErr(t, err)
	assert.False(t, ae.NonRetryable())
	assert.Equal(t, 2*time.Second, ae.NextRetryDelay())
	e.FailNext(0, 0, 0, "")
	// the activity's next attempt goes through once the limit lifts
	for i := 0; i < 3; i++ {
		if _, err = a.DNSSwitch(context.Background(), switchIn("dr.example.com")); err == nil {
			break
		}
	}
	require.NoError(t, err)
	assert.Equal(t, "dr.example.com", e.Records(z, "case.example.com")[0].Content)
}

func TestDNSSwitchServerErrorIsRetryable(t *testing.T) {
	e, z, a := setup(t, "dns-token")
	e.AddRecord(z, "CNAME", "case.example.com", "primary.example.com", 300)
	e.FailNext(3, 503, 0, "")
	_, err := a.DNSSwitch(context.Background(), switchIn("dr.example.com"))
	assert.False(t, appErr(t, err).NonRetryable())
}

func TestDNSSwitchBadInputIsNotRetryable(t *testing.T) {
	_, _, a := setup(t, "dns-token")
	in := switchIn("dr.example.com")
	in.Args["zone"] = "example.org"
	_, err := a.DNSSwitch(context.Background(), in)
	assert.True(t, appErr(t, err).NonRetryable())
	assert.Contains(t, err.Error(), "zone example.org not found")

	in = switchIn("dr.example.com")
	in.Args["ttl"] = 5
	_, err = a.DNSSwitch(context.Background(), in)
	assert.True(t, appErr(t, err).NonRetryable())
	assert.Contains(t, err.Error(), "Invalid TTL")
}

func TestLBFailover(t *testing.T) {
	e, z, a := setup(t, "lb-token")
	primary := e.AddPool("primary", true)
	dr := e.AddPool("dr", true)
	lb := e.AddLoadBalancer(z, "lb.example.com", []string{primary.ID, dr.ID}, dr.ID)
	in := runbooks.StepInput{Args: map[string]any{"zone": "example.com", "loadBalancer": "lb.example.com", "drPool": "dr", "primaryPool": "primary"}}
	for i := 0; i < 2; i++ { // the second run is a no-op
		res, err := a.LBFailover(context.Background(), in)
		require.NoError(t, err)
		assert.Contains(t, res.Summary, "dr is the default pool, primary disabled")
	}
	assert.Equal(t, []string{dr.ID, primary.ID}, e.LoadBalancer(lb.ID).DefaultPools)
	assert.False(t, e.Pool(primary.ID).Enabled)

	in.Args["drPool"] = "nope"
	_, err := a.LBFailover(context.Background(), in)
	assert.True(t, appErr(t, err).NonRetryable())
	assert.Contains(t, err.Error(), `no pool "nope"`)

	dnsOnly := &cloudflare.Actions{Token: func() (string, error) { return "dns-token", nil }, BaseURL: e.URL}
	in.Args["drPool"] = "dr"
	e.EnablePool(primary.ID)
	_, err = dnsOnly.LBFailover(context.Background(), in)
	assert.True(t, appErr(t, err).NonRetryable())
	assert.Contains(t, err.Error(), "403")
}

// lbRestore, given lbFailover's outputs, puts the load balancer back exactly
// as it was; run twice, the second finds it done.
func TestLBRestoreUndoesLBFailover(t *testing.T) {
	e, z, a := setup(t, "lb-token")
	primary := e.AddPool("primary", true)
	dr := e.AddPool("dr", true)
	lb := e.AddLoadBalancer(z, "lb.example.com", []string{primary.ID, dr.ID}, dr.ID)
	res, err := a.LBFailover(context.Background(), runbooks.StepInput{Args: map[string]any{"zone": "example.com", "loadBalancer": "lb.example.com", "drPool": "dr", "primaryPool": "primary"}})
	require.NoError(t, err)
	require.Equal(t, []string{dr.ID, primary.ID}, e.LoadBalancer(lb.ID).DefaultPools)
	back := runbooks.StepInput{Args: map[string]any{"zone": "example.com", "loadBalancer": "lb.example.com",
		"defaultPools": res.Outputs["previousDefaultPools"], "enablePool": "primary"}}
	for i := 0; i < 2; i++ {
		out, err := a.LBRestore(context.Background(), back)
		require.NoError(t, err)
		assert.Contains(t, out.Summary, "primary enabled, default pools back to "+primary.ID+", "+dr.ID)
	}
	assert.Equal(t, []string{primary.ID, dr.ID}, e.LoadBalancer(lb.ID).DefaultPools)
	assert.True(t, e.Pool(primary.ID).Enabled)
}

func TestDNSSwitchIgnoresAStaleCommentOfAnOlderRun(t *testing.T) {
	e, z, a := setup(t, "dns-token")
	r := e.AddRecord(z, "CNAME", "case.example.com", "primary-lb.ca-central-1.example.com", 300)
	r.Comment = "lifeboat previous=CNAME:dead-target.example.com:300:false (lifeboat-x-failover-old999/run-0/shift-traffic)"
	res, err := a.DNSSwitch(context.Background(), switchIn("dr-lb.ca-west-1.example.com"))
	require.NoError(t, err)
	assert.Equal(t, "primary-lb.ca-central-1.example.com", res.Outputs["previous"].(map[string]any)["content"],
		"the previous value is read live, not from another run's comment: failback must go to the real primary")
}

func TestDNSSwitchRefusesToMoveOneOfSeveralRoundRobinRecords(t *testing.T) {
	e, z, a := setup(t, "dns-token")
	e.AddRecord(z, "A", "case.example.com", "203.0.113.10", 60)
	e.AddRecord(z, "A", "case.example.com", "203.0.113.11", 60)
	_, err := a.DNSSwitch(context.Background(), switchIn("198.51.100.7"))
	require.Error(t, err)
	ae := appErr(t, err)
	assert.True(t, ae.NonRetryable())
	assert.Contains(t, err.Error(), "A 203.0.113.10, A 203.0.113.11")
	for _, rec := range e.Records(z, "case.example.com") {
		assert.NotEqual(t, "198.51.100.7", rec.Content, "nothing moved")
	}
}

func TestDNSSwitchChangesTheTypeInOneWriteWithNoWindowWithoutARecord(t *testing.T) {
	e, z, a := setup(t, "dns-token")
	e.AddRecord(z, "A", "case.example.com", "203.0.113.10", 60)
	calls := len(e.Calls())
	_, err := a.DNSSwitch(context.Background(), switchIn("dr-lb.example.com"))
	require.NoError(t, err)
	writes := 0
	for _, c := range e.Calls()[calls:] {
		assert.NotContains(t, c, "DELETE", "a delete then create leaves the name without a record (a DNS outage if the worker dies between them)")
		if !strings.HasPrefix(c, "GET") {
			writes++
		}
	}
	assert.Equal(t, 1, writes, "one write moves the record")
	recs := e.Records(z, "case.example.com")
	require.Len(t, recs, 1)
	assert.Equal(t, "CNAME", recs[0].Type)
	assert.Equal(t, "dr-lb.example.com", recs[0].Content)
}

// TestLBFailoverRetriedAttemptReportsTheStateBeforeTheRun: the first
// attempt reorders the pools, then the API fails it on disabling the
// primary; Temporal retries with the first attempt's heartbeat details.
func TestLBFailoverRetriedAttemptReportsTheStateBeforeTheRun(t *testing.T) {
	e, z, a := setup(t, "lb-token")
	primary := e.AddPool("primary", true)
	dr := e.AddPool("dr", true)
	e.AddLoadBalancer(z, "lb.example.com", []string{primary.ID, dr.ID}, dr.ID)
	in := runbooks.StepInput{WorkflowID: "wf", StepID: "lb", Args: map[string]any{"zone": "example.com", "loadBalancer": "lb.example.com", "drPool": "dr", "primaryPool": "primary"}}

	var s testsuite.WorkflowTestSuite
	first := s.NewTestActivityEnvironment()
	var carried converter.EncodedValues
	first.SetOnActivityHeartbeatListener(func(_ *activity.Info, d converter.EncodedValues) { carried = d })
	first.RegisterActivityWithOptions(a.LBFailover, activity.RegisterOptions{Name: "cloudflare.lbFailover"})
	e.FailNext(1, 400, 0, "/pools/"+primary.ID) // disabling the primary fails after the reorder
	_, err := first.ExecuteActivity("cloudflare.lbFailover", in)
	require.Error(t, err)
	require.NotNil(t, carried, "the first attempt recorded what it read before changing anything")

	var before map[string]any
	require.NoError(t, carried.Get(&before))
	retry := s.NewTestActivityEnvironment()
	retry.SetHeartbeatDetails(before)
	retry.RegisterActivityWithOptions(a.LBFailover, activity.RegisterOptions{Name: "cloudflare.lbFailover"})
	v, err := retry.ExecuteActivity("cloudflare.lbFailover", in)
	require.NoError(t, err)
	var res runbooks.StepResult
	require.NoError(t, v.Get(&res))
	assert.Equal(t, []any{primary.ID, dr.ID}, res.Outputs["previousDefaultPools"], "the order before the run, not the one the first attempt wrote")
	assert.Equal(t, true, res.Outputs["primaryWasEnabled"])
}
