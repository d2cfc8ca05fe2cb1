package runbooks_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

func TestPlanWavesAndCriticalPath(t *testing.T) {
	rb, err := runbooks.Parse([]byte(header+`  layers:
    network:
      - {id: net, action: http.check, expect: 5m, with: {url: "http://x"}}
    workloads:
      - {id: scale, action: http.check, expect: 1m, with: {url: "http://x"}}
      - {id: other, action: http.check, expect: 2m, with: {url: "http://x"}}
      - {id: ready, action: http.check, needs: [scale], expect: 4m, with: {url: "http://x"}}
    edge:
      - {id: shift, action: http.check, timeout: 3m, approval: {from: [ic]}, with: {url: "http://x"}}
`), "t.yaml")
	require.NoError(t, err)
	p := runbooks.MakePlan(rb)
	require.Len(t, p.Layers, 3)
	w := p.Layers[1].Waves
	require.Len(t, w, 2)
	assert.Equal(t, []string{"scale", "other"}, []string{w[0][0].ID, w[0][1].ID})
	assert.Equal(t, "ready", w[1][0].ID)
	assert.Equal(t, []string{"net", "scale", "ready", "shift"}, p.Critical)
	assert.Equal(t, runbooks.Duration(13*time.Minute), p.Estimate) // 5 + (1+4) + 3
	assert.True(t, p.Fits)
	assert.True(t, p.Layers[2].Waves[0][0].Gated)
	var out bytes.Buffer
	p.WriteText(&out)
	assert.Contains(t, out.String(), "wave 1, in parallel: scale (http.check, ~1m), other (http.check, ~2m)")
	assert.Contains(t, out.String(), "Estimated: 13m of RTO 1h — fits the RTO")
}
