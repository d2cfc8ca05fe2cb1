package worker

import (
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
)

// Metrics is the worker's metrics registry: the Temporal SDK's metrics
// handler (client.Options.MetricsHandler, also what workflows reach through
// workflow.GetMetricsHandler) and the Prometheus text exposition at /metrics.
//
// Counters and gauges keep their names; timers become histograms in seconds
// named NAME_seconds. Series of one name may carry different tag keys (the
// SDK's do): missing labels are exposed empty. A gauge updated with NaN is
// dropped — lifeboat's per-run gauges do that when the run ends.
type Metrics struct {
	mu       sync.Mutex
	families map[string]*family
}

// NewMetrics returns an empty registry.
func NewMetrics() *Metrics { return &Metrics{families: map[string]*family{}} }

type kind int

const (
	counterKind kind = iota
	gaugeKind
	histogramKind
)

type family struct {
	kind   kind
	series map[string]*series
}

type series struct {
	labels  map[string]string
	value   float64  // counter or gauge
	buckets []uint64 // histogram, per bound in timerBuckets (not cumulative)
	sum     float64
	count   uint64
}

// timerBuckets are the histogram bounds in seconds: from an RPC to an RTO.
var timerBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400}

// Handler is a view of the registry with tags, the SDK's metrics handler.
func (m *Metrics) Handler() client.MetricsHandler { return handler{m: m} }

type handler struct {
	m    *Metrics
	tags map[string]string
}

func (h handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return handler{m: h.m, tags: merged}
}

func (h handler) Counter(name string) client.MetricsCounter {
	return counterFunc(func(d int64) { h.m.observe(name, counterKind, h.tags, float64(d)) })
}

func (h handler) Gauge(name string) client.MetricsGauge {
	return gaugeFunc(func(v float64) { h.m.observe(name, gaugeKind, h.tags, v) })
}

func (h handler) Timer(name string) client.MetricsTimer {
	return timerFunc(func(d time.Duration) { h.m.observe(name+"_seconds", histogramKind, h.tags, d.Seconds()) })
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

func (m *Metrics) observe(name string, k kind, tags map[string]string, v float64) {
	name = sanitize(name)
	key := labelKey(tags)
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.families[name]
	if f == nil {
		f = &family{kind: k, series: map[string]*series{}}
		m.families[name] = f
	}
	if k == gaugeKind && math.IsNaN(v) {
		delete(f.series, key)
		return
	}
	s := f.series[key]
	if s == nil {
		s = &series{labels: tags}
		if k == histogramKind {
			s.buckets = make([]uint64, len(timerBuckets))
		}
		f.series[key] = s
	}
	switch k {
	case counterKind:
		s.value += v
	case gaugeKind:
		s.value = v
	case histogramKind:
		s.sum += v
		s.count++
		if i := sort.SearchFloat64s(timerBuckets, v); i < len(timerBuckets) {
			s.buckets[i]++
		}
	}
}

// ServeHTTP writes the Prometheus text exposition format (version 0.0.4).
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.Write(w)
}

// Write writes every metric, sorted by name and labels.
func (m *Metrics) Write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(m.families)) {
		f := m.families[name]
		if len(f.series) == 0 {
			continue
		}
		fmt.Fprintf(w, "# TYPE %s %s\n", name, [...]string{"counter", "gauge", "histogram"}[f.kind])
		labelNames := f.labelNames()
		for _, k := range slices.Sorted(maps.Keys(f.series)) {
			s := f.series[k]
			if f.kind != histogramKind {
				fmt.Fprintf(w, "%s%s %s\n", name, labels(labelNames, s.labels, ""), num(s.value))
				continue
			}
			var cum uint64
			for i, le := range timerBuckets {
				cum += s.buckets[i]
				fmt.Fprintf(w, "%s_bucket%s %d\n", name, labels(labelNames, s.labels, num(le)), cum)
			}
			fmt.Fprintf(w, "%s_bucket%s %d\n", name, labels(labelNames, s.labels, "+Inf"), s.count)
			fmt.Fprintf(w, "%s_sum%s %s\n", name, labels(labelNames, s.labels, ""), num(s.sum))
			fmt.Fprintf(w, "%s_count%s %d\n", name, labels(labelNames, s.labels, ""), s.count)
		}
	}
}

func (f *family) labelNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range f.series {
		for k := range s.labels {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

func labels(names []string, values map[string]string, le string) string {
	parts := make([]string, 0, len(names)+1)
	for _, n := range names {
		parts = append(parts, fmt.Sprintf(`%s="%s"`, sanitize(n), escape(values[n])))
	}
	if le != "" {
		parts = append(parts, fmt.Sprintf(`le="%s"`, le))
	}
	if len(parts) == 0 {
		return ""
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func labelKey(tags map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		b.WriteString(k + "\x00" + tags[k] + "\x00")
	}
	return b.String()
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
}

func escape(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
