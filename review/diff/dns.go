package diff

import (
	"fmt"
	"slices"
	"strconv"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/dns"
	"meridian.dev/meridian/render"
)

// compareDNS compares the endpoints the two revisions publish, with every placement
// taken as healthy: the records and health checks a revision implies once deployed.
func compareDNS(base, head *fleet.Model, filter render.Filter) []DNSChange {
	all := func(fleet.UnitID) bool { return true }
	byKey := map[fleet.UnitID]*sides[*dns.Endpoint]{}
	var keys []fleet.UnitID
	at := func(e *dns.Endpoint) *sides[*dns.Endpoint] {
		if byKey[e.Unit()] == nil {
			byKey[e.Unit()] = &sides[*dns.Endpoint]{}
			keys = append(keys, e.Unit())
		}
		return byKey[e.Unit()]
	}
	selected := func(e dns.Endpoint) bool {
		return (filter.Tenant == "" || filter.Tenant == e.Tenant) && (filter.Region == "" || filter.Region == e.Region) && (filter.App == "" || filter.App == e.App)
	}
	for _, e := range dns.Desired(base, all) {
		if selected(e) {
			at(&e).base = &e
		}
	}
	for _, e := range dns.Desired(head, all) {
		if selected(e) {
			at(&e).head = &e
		}
	}
	slices.SortFunc(keys, fleet.UnitID.Compare)

	out := []DNSChange{}
	for _, k := range keys {
		s := byKey[k]
		switch {
		case s.base == nil:
			out = append(out, describe(*s.head, Added))
		case s.head == nil:
			out = append(out, describe(*s.base, Removed))
		default:
			fields := endpointFields(*s.base, *s.head)
			if len(fields) == 0 {
				continue
			}
			c := describe(*s.head, Changed)
			c.Fields = fields
			out = append(out, c)
		}
	}
	return out
}

func describe(e dns.Endpoint, change Change) DNSChange {
	return DNSChange{
		Placement: e.Unit(), Tenant: e.Tenant, Region: e.Region, App: e.App, Change: change,
		Name: e.Global, Regional: e.Regional, AWSRegion: e.AWSRegion,
		Target:      target(e.Target),
		HealthCheck: healthCheck(e.HealthCheck),
	}
}

func target(t fleet.Endpoint) string {
	return t.Type + " " + t.Target
}

// healthCheck describes a check as HTTPS://name:443/path every 30s, 3 failures.
func healthCheck(h dns.HealthCheckSpec) string {
	host := h.FQDN
	if h.IPAddress != "" {
		host = h.IPAddress + " (Host " + h.FQDN + ")"
	}
	return fmt.Sprintf("%s %s:%d%s every %ds, unhealthy after %d failures", h.Protocol, host, h.Port, h.Path, h.IntervalSeconds, h.FailureThreshold)
}

// endpointFields lists what differs between two versions of an endpoint.
func endpointFields(a, b dns.Endpoint) []FieldChange {
	var out []FieldChange
	add := func(field, x, y string) {
		if x != y {
			out = append(out, FieldChange{Field: field, Base: x, Head: y})
		}
	}
	itoa := strconv.Itoa
	add("name", a.Global, b.Global)
	add("regional", a.Regional, b.Regional)
	add("awsRegion", a.AWSRegion, b.AWSRegion)
	add("target", target(a.Target), target(b.Target))
	add("target.hostedZoneID", a.Target.HostedZoneID, b.Target.HostedZoneID)
	ha, hb := a.HealthCheck, b.HealthCheck
	add("healthCheck.protocol", ha.Protocol, hb.Protocol)
	add("healthCheck.ipAddress", ha.IPAddress, hb.IPAddress)
	add("healthCheck.fqdn", ha.FQDN, hb.FQDN)
	add("healthCheck.port", itoa(ha.Port), itoa(hb.Port))
	add("healthCheck.path", ha.Path, hb.Path)
	add("healthCheck.intervalSeconds", itoa(ha.IntervalSeconds), itoa(hb.IntervalSeconds))
	add("healthCheck.failureThreshold", itoa(ha.FailureThreshold), itoa(hb.FailureThreshold))
	return out
}
