package worker

import (
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// Metrics is the worker's metrics registry: one Prometheus registry
// (github.com/prometheus/client_golang) behind /metrics, fed by the Temporal
// SDK's metrics handler for tally (go.temporal.io/sdk/contrib/tally, the
// SDK's documented Prometheus set-up: counters end in _total, timers become
// histograms in seconds named NAME_seconds) and by lifeboat's own per-run
// gauges.
//
// lifeboat's per-run gauges (names starting lifeboat_) are Prometheus gauge
// vectors on the same registry rather than tally gauges, because a run that
// ends must take its series away: a gauge updated with NaN deletes its
// series (tally cannot forget a series).
type Metrics struct {
	registry *prometheus.Registry
	scope    tally.Scope
	closer   io.Closer

	mu     sync.Mutex
	gauges map[string]*runGauge
}

// timerBuckets are the histogram bounds in seconds: from an RPC to an RTO.
var timerBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400}

// sanitize is the SDK's Prometheus sanitizing, except that label values
// keep the characters runbook names, workflow ids and actions use
// (Prometheus allows any text in a label value).
var sanitize = tally.SanitizeOptions{
	NameCharacters: sdktally.PrometheusSanitizeOptions.NameCharacters,
	KeyCharacters:  sdktally.PrometheusSanitizeOptions.KeyCharacters,
	ValueCharacters: tally.ValidCharacters{Ranges: tally.AlphanumericRange,
		Characters: []rune("_-.:/@+=,()[]{}<>#%&*!?'~ ")},
	ReplacementCharacter: tally.DefaultReplacementCharacter,
}

// reportEvery is how often tally reports the SDK's metrics to Prometheus.
const reportEvery = 250 * time.Millisecond

// NewMetrics returns an empty registry. Close stops its reporting loop.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer: reg, Gatherer: reg,
		DefaultTimerType: tallyprom.HistogramTimerType, DefaultHistogramBuckets: timerBuckets,
		// A series whose tag keys differ from the first one's cannot join
		// its family in Prometheus; losing it beats crashing the worker.
		OnRegisterError: func(error) {},
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter: reporter, Separator: tallyprom.DefaultSeparator,
		SanitizeOptions: &sanitize, OmitCardinalityMetrics: true,
	}, reportEvery)
	return &Metrics{registry: reg, scope: sdktally.NewPrometheusNamingScope(scope), closer: closer, gauges: map[string]*runGauge{}}
}

// Close flushes and stops the tally reporting loop.
func (m *Metrics) Close() error { return m.closer.Close() }

// ServeHTTP serves the Prometheus exposition of the registry (tally
// reports into it every reportEvery).
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// Handler is the SDK's metrics handler over the registry.
func (m *Metrics) Handler() client.MetricsHandler {
	return handler{m: m, inner: sdktally.NewMetricsHandler(m.scope)}
}

// handler is the SDK's tally handler, with lifeboat's gauges routed to
// runGauges; it keeps the tags it was given so a run gauge knows its labels.
type handler struct {
	m     *Metrics
	inner client.MetricsHandler
	tags  map[string]string
}

// WithTags keeps the tags, so Gauge can name the run a gauge belongs to.
func (h handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return handler{m: h.m, inner: h.inner.WithTags(tags), tags: merged}
}

// Counter and Timer are the SDK handler's.
func (h handler) Counter(name string) client.MetricsCounter { return h.inner.Counter(name) }

func (h handler) Timer(name string) client.MetricsTimer { return h.inner.Timer(name) }

// Gauge is the SDK handler's, except lifeboat's own gauges: those are
// series labelled by the handler's tags, which an update with NaN deletes
// (a run drops its own when it ends).
func (h handler) Gauge(name string) client.MetricsGauge {
	if !strings.HasPrefix(name, "lifeboat_") {
		return h.inner.Gauge(name)
	}
	return runGaugeSeries{g: h.m.runGauge(name, h.tags), tags: h.tags}
}

// runGauge is one of lifeboat's gauges: its label names are the tag keys of
// its first series.
type runGauge struct {
	vec    *prometheus.GaugeVec
	labels []string
}

func (m *Metrics) runGauge(name string, tags map[string]string) *runGauge {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g := m.gauges[name]; g != nil {
		return g
	}
	labels := make([]string, 0, len(tags))
	for k := range tags {
		labels = append(labels, k)
	}
	sort.Strings(labels)
	g := &runGauge{vec: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: "lifeboat " + name}, labels), labels: labels}
	m.registry.MustRegister(g.vec)
	m.gauges[name] = g
	return g
}

type runGaugeSeries struct {
	g    *runGauge
	tags map[string]string
}

// Update sets the series; NaN deletes it.
func (s runGaugeSeries) Update(v float64) {
	labels := prometheus.Labels{}
	for _, k := range s.g.labels {
		labels[k] = s.tags[k]
	}
	if math.IsNaN(v) {
		s.g.vec.Delete(labels)
		return
	}
	s.g.vec.With(labels).Set(v)
}
