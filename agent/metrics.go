package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// Metrics are the agent's Prometheus metrics, in a registry of their own
// (served at GET /metrics). Create them before the registry so that its
// write latency is measured too (ObserveRegistryWrite).
type Metrics struct {
	reg            *prometheus.Registry
	ensureTotal    *prometheus.CounterVec
	ensureSeconds  *prometheus.HistogramVec
	runtimeSeconds *prometheus.HistogramVec
	runtimeErrors  *prometheus.CounterVec
	pruneTotal     *prometheus.CounterVec
	registryWrite  prometheus.Histogram
}

// NewMetrics returns the agent's metrics, with Go and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		ensureTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zaki_ensure_total", Help: "Ensure calls by outcome (reused, started, created, recreated) or error class.",
		}, []string{"outcome"}),
		ensureSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zaki_ensure_duration_seconds", Help: "Ensure latency by outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"outcome"}),
		runtimeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zaki_runtime_call_duration_seconds", Help: "Runtime plugin call latency by method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method"}),
		runtimeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zaki_runtime_call_errors_total", Help: "Runtime plugin call errors by method and class.",
		}, []string{"method", "class"}),
		pruneTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zaki_prune_instances_total", Help: "Instances acted on by pruning, by action (paused, stopped, removed, failed).",
		}, []string{"action"}),
		registryWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "zaki_registry_write_duration_seconds", Help: "Durable registry write latency.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
	}
	m.reg.MustRegister(m.ensureTotal, m.ensureSeconds, m.runtimeSeconds, m.runtimeErrors, m.pruneTotal, m.registryWrite,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveRegistryWrite records one durable registry write.
func (m *Metrics) ObserveRegistryWrite(d time.Duration, _ error) {
	m.registryWrite.Observe(d.Seconds())
}

// Gatherer returns the registry to serve.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// attach registers the collectors that read the agent's state.
func (m *Metrics) attach(a *Agent) {
	for _, state := range []string{StateRunning, StatePaused, StateStopped, StateMissing} {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zaki_instances", Help: "Instances by state.", ConstLabels: prometheus.Labels{"state": state},
		}, func() float64 {
			c := a.Counts()
			switch state {
			case StateRunning:
				return float64(c.Running)
			case StatePaused:
				return float64(c.Paused)
			case StateStopped:
				return float64(c.Stopped)
			}
			return float64(c.Missing)
		}))
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "zaki_data_bytes", Help: "Disk space the users' data dirs take, summed over the users measured (instance.dataQuota applies to each).",
	}, func() float64 { b, _ := a.usage.totals(); return float64(b) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "zaki_instances_over_quota", Help: "Users whose data was over instance.dataQuota when last measured (their instances are stopped).",
	}, func() float64 { _, n := a.usage.totals(); return float64(n) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "zaki_plugin_restarts_total", Help: "Relaunches of the runtime plugin.",
	}, func() float64 { return float64(a.restarts()) }))
}

func (m *Metrics) observeEnsure(outcome string, err error, d time.Duration) {
	if err != nil {
		outcome = "error_" + className(err)
	}
	m.ensureTotal.WithLabelValues(outcome).Inc()
	m.ensureSeconds.WithLabelValues(outcome).Observe(d.Seconds())
}

func (m *Metrics) observeCall(method string, err error, d time.Duration) {
	m.runtimeSeconds.WithLabelValues(method).Observe(d.Seconds())
	if err != nil {
		m.runtimeErrors.WithLabelValues(method, className(err)).Inc()
	}
}

func (m *Metrics) observePrune(res PruneResult) {
	m.pruneTotal.WithLabelValues("paused").Add(float64(len(res.Paused)))
	m.pruneTotal.WithLabelValues("stopped").Add(float64(len(res.Stopped)))
	m.pruneTotal.WithLabelValues("removed").Add(float64(len(res.Removed)))
	m.pruneTotal.WithLabelValues("failed").Add(float64(len(res.Failed)))
}

// className names err's class for a metric label.
func className(err error) string {
	switch errdefs.Class(err) {
	case errdefs.ErrNotFound:
		return "not_found"
	case errdefs.ErrAlreadyExists:
		return "already_exists"
	case errdefs.ErrInvalidArgument:
		return "invalid_argument"
	case errdefs.ErrUnavailable:
		return "unavailable"
	case errdefs.ErrTimeout:
		return "timeout"
	case errdefs.ErrConflict:
		return "conflict"
	case errdefs.ErrResourceExhausted:
		return "resource_exhausted"
	case errdefs.ErrDataLoss:
		return "data_loss"
	case errdefs.ErrInstanceFailed:
		return "instance_failed"
	case errdefs.ErrQuotaExceeded:
		return "quota_exceeded"
	case errdefs.ErrNodeUnavailable:
		return "node_unavailable"
	}
	return "internal"
}
