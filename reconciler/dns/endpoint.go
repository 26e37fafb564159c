package dns

import (
	"slices"

	"meridian.dev/meridian/fleet"
)

// Health-check defaults, as fleet-format documents them.
const (
	defaultInterval  = 30
	defaultThreshold = 3
)

// Endpoint is one exposed placement in one region that is deployed and healthy:
// what gets a health check and DNS records.
type Endpoint struct {
	// Fleet is the fleet's name; it scopes ownership in the registry and the tags.
	Fleet string
	// Tenant, App and Region name the placement; Region is the fleet's region name.
	Tenant, App, Region string
	// AWSRegion is the AWS region of the latency record.
	AWSRegion string
	// Global is the latency-routed name <subdomain>.<tenant>.<zone>, without a trailing dot.
	Global string
	// Regional is <subdomain>.<tenant>.<region>.<zone>, without a trailing dot.
	Regional string
	// Target is where the region's ingress receives traffic: Alias, CNAME or A.
	Target fleet.Endpoint
	// HealthCheck is how Route53 probes the placement.
	HealthCheck HealthCheckSpec
	// SharedCheck is set when the fleet keeps one health check per app and
	// region (fleet.HealthChecksPerAppRegion): the endpoint uses that check,
	// owned by no tenant (SharedTenant).
	SharedCheck bool
}

// SharedTenant is the tenant tag of a health check shared by every tenant of an
// app in a region; no tenant can have the name (tenant names are DNS labels), and
// it is a valid tag value.
const SharedTenant = "_shared"

// Unit is the endpoint's placement.
func (e Endpoint) Unit() fleet.UnitID {
	return fleet.UnitID{Tenant: e.Tenant, Region: e.Region, App: e.App}
}

// HealthCheckSpec is the part of a Route53 health check Meridian decides.
type HealthCheckSpec struct {
	// Protocol is HTTP or HTTPS, the health check's Type.
	Protocol string
	// IPAddress is probed when the region's endpoint is an A record; empty otherwise.
	IPAddress string
	// FQDN is the regional name: the Host header and SNI of every probe, and what is
	// resolved and probed when IPAddress is empty.
	FQDN string
	// Port is the app's exposed port.
	Port int
	// Path is the app's health path.
	Path string
	// IntervalSeconds between probes: 10 or 30.
	IntervalSeconds int
	// FailureThreshold is how many failed probes turn the check unhealthy.
	FailureThreshold int
}

// Desired returns the endpoints of every exposed placement that healthy reports
// deployed and healthy, outside the regions fleet.yaml drains, ordered by key.
// healthy is called with each placement; a caller that cannot
// tell (its region is unreachable) should answer with the last state it knew, since
// an endpoint missing here is withdrawn from DNS.
func Desired(model *fleet.Model, healthy func(fleet.UnitID) bool) []Endpoint {
	dns := model.Fleet.Spec.DNS
	var out []Endpoint
	for _, p := range model.Placements() {
		global, regional, ok := p.Hostnames(dns.Zone)
		if !ok || slices.Contains(dns.Drain, p.Region.Metadata.Name) || !healthy(p.ID()) {
			continue
		}
		x := p.App.Spec.Expose
		spec := HealthCheckSpec{
			Protocol:         x.Protocol,
			FQDN:             regional,
			Port:             x.Port,
			Path:             x.HealthCheck.Path,
			IntervalSeconds:  x.HealthCheck.IntervalSeconds,
			FailureThreshold: x.HealthCheck.FailureThreshold,
		}
		if spec.IntervalSeconds == 0 {
			spec.IntervalSeconds = defaultInterval
		}
		if spec.FailureThreshold == 0 {
			spec.FailureThreshold = defaultThreshold
		}
		target := p.Region.Spec.Endpoint
		if target.Type == fleet.EndpointA {
			spec.IPAddress = target.Target
		}
		shared := dns.HealthChecks == fleet.HealthChecksPerAppRegion
		if shared {
			// One check per app and region: it probes the region's endpoint
			// itself (its address, or the load balancer's or edge's name, which
			// is also the Host header) at the app's health path, which must
			// answer for every tenant there.
			if target.Type != fleet.EndpointA {
				spec.FQDN = canonical(target.Target)
			}
		}
		out = append(out, Endpoint{
			Fleet:       model.Fleet.Metadata.Name,
			Tenant:      p.Tenant.Metadata.Name,
			App:         p.App.Metadata.Name,
			Region:      p.Region.Metadata.Name,
			AWSRegion:   p.Region.Spec.AWSRegion,
			Global:      global,
			Regional:    regional,
			Target:      target,
			HealthCheck: spec,
			SharedCheck: shared,
		})
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return a.Unit().Compare(b.Unit()) })
	return out
}

// Only returns the endpoints whose placement keep accepts, in their order:
// Only(Desired(m, all), keep) is Desired(m, keep) without placing the fleet again.
func Only(endpoints []Endpoint, keep func(fleet.UnitID) bool) []Endpoint {
	var out []Endpoint
	for _, e := range endpoints {
		if keep(e.Unit()) {
			out = append(out, e)
		}
	}
	return out
}

// CheckUnit is the owner of the health check the endpoint uses: its placement,
// or with a shared check its app and region (tenant SharedTenant).
func (e Endpoint) CheckUnit() fleet.UnitID {
	if e.SharedCheck {
		return fleet.UnitID{Tenant: SharedTenant, Region: e.Region, App: e.App}
	}
	return e.Unit()
}

// checkKey identifies the health check an endpoint uses.
func (e Endpoint) checkKey() string { return e.CheckUnit().String() }
