package cloudflare_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/testsuite/cloudflare"
)

type answer struct {
	status  int
	header  http.Header
	Success bool `json:"success"`
	Errors  []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	Result     json.RawMessage `json:"result"`
	ResultInfo *struct {
		TotalCount int `json:"total_count"`
	} `json:"result_info"`
}

func call(t *testing.T, e *cloudflare.Emulator, token, method, path string, body any) answer {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	return a
}

func TestEmulatorSpeaksTheCloudflareAPI(t *testing.T) {
	e, err := cloudflare.Start()
	require.NoError(t, err)
	defer e.Close()
	e.AddToken("dns", cloudflare.ZoneRead, cloudflare.DNSEdit)
	e.AddToken("readonly", cloudflare.ZoneRead)
	z := e.AddZone("example.com")
	rec := e.AddRecord(z, "CNAME", "case.example.com", "primary-lb.example.com", 300)

	assert.Equal(t, 400, call(t, e, "", "GET", "/zones", nil).status)
	bad := call(t, e, "nope", "GET", "/zones", nil)
	assert.Equal(t, 1000, bad.Errors[0].Code)

	zones := call(t, e, "readonly", "GET", "/zones?name=example.com", nil)
	require.True(t, zones.Success)
	assert.Equal(t, 1, zones.ResultInfo.TotalCount)

	list := call(t, e, "readonly", "GET", "/zones/"+z.ID+"/dns_records?name=case.example.com&type=CNAME", nil)
	var recs []cloudflare.Record
	require.NoError(t, json.Unmarshal(list.Result, &recs))
	require.Len(t, recs, 1)
	assert.Equal(t, "primary-lb.example.com", recs[0].Content)

	denied := call(t, e, "readonly", "PATCH", "/zones/"+z.ID+"/dns_records/"+rec.ID, map[string]any{"content": "dr-lb.example.com"})
	assert.Equal(t, 403, denied.status)
	assert.Equal(t, "Authentication error", denied.Errors[0].Message)

	tooLow := call(t, e, "dns", "PATCH", "/zones/"+z.ID+"/dns_records/"+rec.ID, map[string]any{"ttl": 10})
	assert.Equal(t, 400, tooLow.status)
	assert.Contains(t, tooLow.Errors[0].Message, "Invalid TTL")

	ok := call(t, e, "dns", "PATCH", "/zones/"+z.ID+"/dns_records/"+rec.ID, map[string]any{"content": "dr-lb.example.com", "ttl": 30})
	require.True(t, ok.Success)
	assert.Equal(t, "dr-lb.example.com", e.Records(z, "case.example.com")[0].Content)

	clash := call(t, e, "dns", "POST", "/zones/"+z.ID+"/dns_records", map[string]any{"type": "A", "name": "case.example.com", "content": "10.0.0.1"})
	assert.Equal(t, 81053, clash.Errors[0].Code)

	e.FailNext(1, 429, 2, "dns_records")
	limited := call(t, e, "dns", "GET", "/zones/"+z.ID+"/dns_records", nil)
	assert.Equal(t, 429, limited.status)
	assert.Equal(t, "2", limited.header.Get("Retry-After"))
	e.FailNext(1, 503, 0, "")
	assert.Equal(t, 503, call(t, e, "dns", "GET", "/zones", nil).status)
	assert.True(t, call(t, e, "dns", "GET", "/zones", nil).Success, "faults are used up")

	del := call(t, e, "dns", "DELETE", "/zones/"+z.ID+"/dns_records/"+rec.ID, nil)
	require.True(t, del.Success)
	assert.Empty(t, e.Records(z, "case.example.com"))
	assert.Equal(t, 404, call(t, e, "dns", "GET", "/zones/"+z.ID+"/dns_records/"+rec.ID, nil).status)
}

func TestEmulatorLoadBalancers(t *testing.T) {
	e, err := cloudflare.Start()
	require.NoError(t, err)
	defer e.Close()
	e.AddToken("lb", cloudflare.ZoneRead, cloudflare.LBEdit)
	e.AddToken("dns", cloudflare.ZoneRead, cloudflare.DNSEdit)
	z := e.AddZone("example.com")
	primary := e.AddPool("primary", true, cloudflare.Origin{Name: "ca-central-1", Address: "10.0.0.1", Enabled: true})
	dr := e.AddPool("dr", true, cloudflare.Origin{Name: "ca-west-1", Address: "10.1.0.1", Enabled: true})
	lb := e.AddLoadBalancer(z, "lb.example.com", []string{primary.ID, dr.ID}, dr.ID)
	acc := z.Account.ID

	assert.Equal(t, 403, call(t, e, "dns", "PATCH", "/accounts/"+acc+"/load_balancers/pools/"+primary.ID, map[string]any{"enabled": false}).status)
	require.True(t, call(t, e, "lb", "PATCH", "/accounts/"+acc+"/load_balancers/pools/"+primary.ID, map[string]any{"enabled": false}).Success)
	assert.False(t, e.Pool(primary.ID).Enabled)

	require.True(t, call(t, e, "lb", "PATCH", "/zones/"+z.ID+"/load_balancers/"+lb.ID, map[string]any{"default_pools": []string{dr.ID, primary.ID}}).Success)
	assert.Equal(t, []string{dr.ID, primary.ID}, e.LoadBalancer(lb.ID).DefaultPools)
	unknown := call(t, e, "lb", "PATCH", "/zones/"+z.ID+"/load_balancers/"+lb.ID, map[string]any{"default_pools": []string{"nope"}})
	assert.Equal(t, 400, unknown.status)
}
