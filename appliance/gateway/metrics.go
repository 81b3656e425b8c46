package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lambgate/lambgate/appliance/queue"
)

// metrics are the gateway's Prometheus series, on a registry of its own so
// that two gateways in one test process do not collide.
type metrics struct {
	registry *prometheus.Registry
	outcomes *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "lambgate",
			Name:      "delivery_outcomes_total",
			Help:      "Recipient outcomes of delivery attempts, by message kind and outcome.",
		}, []string{"kind", "outcome"}),
	}
	m.registry.MustRegister(m.outcomes)
	return m
}

func (m *metrics) queueEvent(e queue.Event) {
	m.outcomes.WithLabelValues(string(e.Kind), string(e.Type)).Inc()
}

// registerGauges adds the series read from the running components.
func (g *Gateway) registerGauges() {
	g.metrics.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "lambgate", Name: "queue_depth",
			Help: "Messages in the delivery queue.",
		}, func() float64 { return float64(g.queue.Stats().Depth) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "lambgate", Name: "queue_deferred",
			Help: "Messages waiting for a retry.",
		}, func() float64 { return float64(g.queue.Stats().Deferred) }),
	)
}
