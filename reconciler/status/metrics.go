package status

import (
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// route53Operations are the Route53 API operations Meridian calls (the methods of
// reconciler/dns.Route53API, and the health check reads); any other is counted as
// "other", so the operation label stays bounded.
var route53Operations = []string{
	"ChangeResourceRecordSets", "ChangeTagsForResource", "CreateHealthCheck", "DeleteHealthCheck",
	"GetAccountLimit", "GetChange", "GetHealthCheck", "GetHealthCheckStatus", "GetHostedZoneLimit", "ListHealthChecks",
	"ListResourceRecordSets", "ListTagsForResources", "UpdateHealthCheck", "other",
}

func route53Operation(op string) string {
	if slices.Contains(route53Operations, op) {
		return op
	}
	return "other"
}

// metrics are the Store's Prometheus metrics, in a registry of their own. Counters
// and histograms are kept by client_golang; everything per placement or per
// region is read from the Store at scrape time (placementCollector), so a unit that
// leaves the fleet leaves the metrics with it.
type metrics struct {
	registry         *prometheus.Registry
	passDuration     prometheus.Histogram
	renderDuration   prometheus.Histogram
	renders          prometheus.Counter
	passes           *prometheus.CounterVec
	refused          prometheus.Counter
	fetchFailures    prometheus.Counter
	route53Requests  *prometheus.CounterVec
	route53Throttles *prometheus.CounterVec
}

// durationBuckets span a pass of a few hundred milliseconds (nothing changed) to
// one that waits out a long health timeout.
var durationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200}

func newMetrics(s *Store) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "meridian_pass_duration_seconds",
			Help:    "How long reconcile passes took: render, plan, apply wave by wave and wait for health.",
			Buckets: durationBuckets,
		}),
		renderDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "meridian_render_duration_seconds",
			Help:    "How long rendering every placement of a revision took (cached placements are free).",
			Buckets: durationBuckets,
		}),
		renders: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meridian_placements_rendered_total",
			Help: "Placements rendered, not served from the render cache: a revision renders only the placements it changed.",
		}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_passes_total",
			Help: "Reconcile passes, by result: converged (every region healthy at the revision, nothing held) or problems.",
		}, []string{"result"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meridian_revisions_refused_total",
			Help: "Fetched revisions refused because their fleet files are not valid.",
		}),
		fetchFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meridian_git_fetch_failures_total",
			Help: "Failed fetches of the fleet repository.",
		}),
		route53Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_route53_requests_total",
			Help: "Requests to the Route53 API, by operation.",
		}, []string{"operation"}),
		route53Throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_route53_throttles_total",
			Help: "Requests to the Route53 API that Route53 throttled, by operation.",
		}, []string{"operation"}),
	}
	// Every label value is known in advance: initialise them, so that rates and
	// increases have a starting point and dashboards show zeros, not gaps.
	for _, result := range []string{"converged", "problems"} {
		m.passes.WithLabelValues(result)
	}
	for _, op := range route53Operations {
		m.route53Requests.WithLabelValues(op)
		m.route53Throttles.WithLabelValues(op)
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.passDuration, m.renderDuration, m.renders, m.passes, m.refused, m.fetchFailures,
		m.route53Requests, m.route53Throttles,
		&placementCollector{s: s},
	)
	return m
}

// The metrics read from the Store at scrape time.
var (
	placementLabels = []string{"tenant", "region", "app", "addon", "kind"}

	syncStateDesc = prometheus.NewDesc("meridian_placement_sync_state",
		"The placement's sync state: 1 for its current state, 0 for the others (Ready, Progressing, Failed, Held, RenderFailed, Unknown). app is empty for a tenant's namespace; an addon's unit has its name in addon, and tenant and app empty; kind is placement (tenant × region × app), namespace or addon.",
		append(slices.Clone(placementLabels), "state"), nil)
	placementRevisionDesc = prometheus.NewDesc("meridian_placement_revision_info",
		"The revision the placement runs, as far as Meridian applied it; always 1.",
		append(slices.Clone(placementLabels), "revision"), nil)
	lastSyncDesc = prometheus.NewDesc("meridian_placement_last_sync_timestamp_seconds",
		"When a pass last found the placement Ready at its revision, in seconds since the epoch.",
		placementLabels, nil)
	driftedDesc = prometheus.NewDesc("meridian_placement_drifted_objects",
		"Objects of the placement that the last drift check found drifted.",
		placementLabels, nil)
	dnsHealthyDesc = prometheus.NewDesc("meridian_dns_endpoint_healthy",
		"1 when every Route53 endpoint of the placement passes its health check, 0 when one does not.",
		placementLabels, nil)
	revisionDesc = prometheus.NewDesc("meridian_revision_info",
		"The revision in use: the last one accepted; always 1.",
		[]string{"revision"}, nil)
	heldDesc = prometheus.NewDesc("meridian_held_deletions",
		"Objects whose deletion the last pass held in the region (mass-deletion guard, or an earlier failure).",
		[]string{"region"}, nil)
	lastPassDesc = prometheus.NewDesc("meridian_last_pass_timestamp_seconds",
		"When the last reconcile pass finished, in seconds since the epoch.", nil, nil)
	quotaLimitDesc = prometheus.NewDesc("meridian_route53_quota_limit",
		"Route53's limit (health checks of the account, record sets of the zone) as last read; 0 when it could not be read.",
		[]string{"quota"}, nil)
	quotaNeededDesc = prometheus.NewDesc("meridian_route53_quota_needed",
		"What the fleet needs of the Route53 limit with every exposed placement published.",
		[]string{"quota"}, nil)
	quotaOthersDesc = prometheus.NewDesc("meridian_route53_quota_used_by_others",
		"What uses the Route53 limit and is not the fleet's (other health checks of the account, other record sets of the zone).",
		[]string{"quota"}, nil)
)

// placementCollector exports the Store's per-placement and per-region state.
type placementCollector struct{ s *Store }

// Describe sends every descriptor the collector may send.
func (c *placementCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{syncStateDesc, placementRevisionDesc, lastSyncDesc, driftedDesc, dnsHealthyDesc, revisionDesc, heldDesc, lastPassDesc, quotaLimitDesc, quotaNeededDesc, quotaOthersDesc} {
		ch <- d
	}
}

// Collect reads the Store under its read lock.
func (c *placementCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, unit := range s.sortedUnits() {
		p := s.placements[unit]
		labels := []string{p.tenant, p.region, p.app, p.addon, kindOf(unit)}
		for _, state := range States {
			v := 0.0
			if p.state == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(syncStateDesc, prometheus.GaugeValue, v, append(slices.Clone(labels), string(state))...)
		}
		if p.revision != "" {
			ch <- prometheus.MustNewConstMetric(placementRevisionDesc, prometheus.GaugeValue, 1, append(slices.Clone(labels), p.revision)...)
		}
		if !p.lastSync.IsZero() {
			ch <- prometheus.MustNewConstMetric(lastSyncDesc, prometheus.GaugeValue, float64(p.lastSync.UnixNano())/1e9, labels...)
		}
		if p.drift.CheckedAt != nil {
			ch <- prometheus.MustNewConstMetric(driftedDesc, prometheus.GaugeValue, float64(p.drift.Objects), labels...)
		}
		if eps := s.dns[unit]; len(eps) > 0 {
			v := 1.0
			for _, e := range eps {
				if !e.Healthy {
					v = 0
				}
			}
			ch <- prometheus.MustNewConstMetric(dnsHealthyDesc, prometheus.GaugeValue, v, labels...)
		}
	}
	if s.current != nil {
		ch <- prometheus.MustNewConstMetric(revisionDesc, prometheus.GaugeValue, 1, s.current.Revision)
	}
	for _, name := range slices.Sorted(maps.Keys(s.regions)) {
		ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, float64(s.regions[name].HeldDeletions), name)
	}
	if s.lastPass != nil {
		ch <- prometheus.MustNewConstMetric(lastPassDesc, prometheus.GaugeValue, float64(s.lastPass.At.UnixNano())/1e9)
	}
	for _, q := range s.quotas {
		name := strings.ReplaceAll(q.Name, " ", "_")
		ch <- prometheus.MustNewConstMetric(quotaLimitDesc, prometheus.GaugeValue, float64(q.Limit), name)
		ch <- prometheus.MustNewConstMetric(quotaNeededDesc, prometheus.GaugeValue, float64(q.Needed), name)
		ch <- prometheus.MustNewConstMetric(quotaOthersDesc, prometheus.GaugeValue, float64(q.Others), name)
	}
}
