package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// apiMetrics are the API's own metrics, served beside the agent's.
type apiMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newAPIMetrics() *apiMetrics {
	m := &apiMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zaki_api_requests_total", Help: "API requests by method, route and status.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zaki_api_request_duration_seconds", Help: "API request latency by route (streams excluded).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
	}
	m.reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *apiMetrics) observe(method, route string, status int, d time.Duration) {
	switch method {
	case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete:
	default:
		method = "other" // bounded label values whatever callers send
	}
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	if route != "/v1/events" && route != "/v1/instances/{userId}/logs" {
		m.duration.WithLabelValues(route).Observe(d.Seconds())
	}
}

// Gatherer returns the metrics the server serves: the agent's (Config.Metrics)
// and the API's own. Serve them elsewhere too with MetricsHandler.
func (s *Server) Gatherer() prometheus.Gatherer {
	if s.cfg.Metrics == nil {
		return s.metrics.reg
	}
	return prometheus.Gatherers{s.cfg.Metrics, s.metrics.reg}
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ call) error {
	promhttp.HandlerFor(s.Gatherer(), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(w, r)
	return nil
}

// MetricsHandler serves g at GET (and HEAD) /metrics, for the optional loopback TCP
// address (metricsAddress): no peer check there, and nothing else served.
func MetricsHandler(g prometheus.Gatherer) http.Handler {
	prom := promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			status, body := socketapi.HTTPError(socketapi.Errorf(socketapi.ErrNotFound, "no such path: %s (only /metrics here)", r.URL.Path))
			writeJSON(w, status, body)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			status, body := socketapi.HTTPError(socketapi.Errorf(socketapi.ErrMethodNotAllowed, "method %s not allowed on /metrics", r.Method))
			writeJSON(w, status, body)
			return
		}
		prom.ServeHTTP(w, r)
	})
}
