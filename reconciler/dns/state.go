package dns

import (
	"fmt"
	"slices"
	"strings"

	"meridian.dev/meridian/fleet"
)

// Record is a Route53 resource record set in the shape the plan needs. Names are
// lowercase without the trailing dot; Values are kept exactly as Route53 returned
// them, because a DELETE must repeat them.
type Record struct {
	// Name is the record's owner name.
	Name string
	// Type is A, CNAME or TXT for the records Meridian writes.
	Type string
	// SetIdentifier tells latency records of one name apart; empty for simple records.
	SetIdentifier string
	// Region is the AWS region of a latency record.
	Region string
	// TTL in seconds; zero for aliases.
	TTL int64
	// Values are the resource records; empty for aliases.
	Values []string
	// Alias is set for alias records.
	Alias *Alias
	// HealthCheckID is the health check Route53 consults before answering with the record.
	HealthCheckID string
}

// Alias is a Route53 alias target.
type Alias struct {
	// HostedZoneID is the target's hosted zone (a load balancer's own zone).
	HostedZoneID string
	// DNSName is the target's name, lowercase without the trailing dot.
	DNSName string
	// EvaluateTargetHealth makes Route53 skip the record when the target is unhealthy.
	EvaluateTargetHealth bool
}

// ID names the record set the way error messages and the plan do: name type [set].
func (r Record) ID() string {
	if r.SetIdentifier != "" {
		return r.Name + " " + r.Type + " [" + r.SetIdentifier + "]"
	}
	return r.Name + " " + r.Type
}

// String describes the record set in one line: its ID, routing, target and check.
func (r Record) String() string {
	s := r.ID()
	if r.Region != "" {
		s += " latency " + r.Region
	}
	if r.Alias != nil {
		s += fmt.Sprintf(" alias %s (zone %s, evaluate target health %t)", r.Alias.DNSName, r.Alias.HostedZoneID, r.Alias.EvaluateTargetHealth)
	} else {
		s += fmt.Sprintf(" ttl %d %s", r.TTL, strings.Join(r.Values, " "))
	}
	if r.HealthCheckID != "" {
		s += " health check " + r.HealthCheckID
	}
	return s
}

// equal compares two record sets the way Route53 would, names and targets
// normalised.
func (r Record) equal(o Record) bool {
	norm := func(vs []string) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = canonical(v)
		}
		slices.Sort(out)
		return out
	}
	if r.Alias != nil && o.Alias != nil {
		a, b := *r.Alias, *o.Alias
		a.DNSName, b.DNSName = canonical(a.DNSName), canonical(b.DNSName)
		if a != b {
			return false
		}
	} else if (r.Alias == nil) != (o.Alias == nil) {
		return false
	}
	return canonical(r.Name) == canonical(o.Name) && r.Type == o.Type && r.SetIdentifier == o.SetIdentifier &&
		r.Region == o.Region && r.TTL == o.TTL && slices.Equal(norm(r.Values), norm(o.Values)) &&
		r.HealthCheckID == o.HealthCheckID
}

// canonical lowercases a name and drops its trailing dot.
func canonical(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

// HealthCheck is a Route53 health check Meridian owns: one its tags say belong to
// this fleet.
type HealthCheck struct {
	// ID is Route53's id of the check.
	ID string
	// CallerReference is the idempotency key it was created with.
	CallerReference string
	// Version is its HealthCheckVersion, sent back with updates.
	Version int64
	// Tenant, App and Region are read from its tags.
	Tenant, App, Region string
	// Spec is its configuration.
	Spec HealthCheckSpec
}

// Unit is the placement the check belongs to.
func (h HealthCheck) Unit() fleet.UnitID {
	return fleet.UnitID{Tenant: h.Tenant, Region: h.Region, App: h.App}
}

// State is what Route53 holds that the plan needs: every record set of the hosted
// zone (Meridian's own, its TXT registry records and everything else, so that
// clashes are seen) and the health checks tagged as this fleet's.
type State struct {
	// Fleet is the fleet whose registry records and tags count as owned.
	Fleet string
	// Records are the zone's record sets.
	Records []Record
	// HealthChecks are the fleet's health checks.
	HealthChecks []HealthCheck
	// AccountHealthChecks counts every health check of the account, the fleet's
	// and others'.
	AccountHealthChecks int
	// HealthCheckLimit is the account's MAX_HEALTH_CHECKS_BY_OWNER and
	// RecordSetLimit the zone's MAX_RRSETS_BY_ZONE; zero when unknown.
	HealthCheckLimit, RecordSetLimit int64
}

// The registry: a TXT record at RegistryPrefix+name, with the same SetIdentifier
// and routing as the record set it marks, whose value names the owner.
const (
	// RegistryPrefix is the label put in front of a record's name for its TXT registry record.
	RegistryPrefix = "_meridian."
	registryTTL    = 300
)

// registryValue is the TXT value marking a record set as owned by fleetName for
// placement unit.
func registryValue(fleetName string, unit fleet.UnitID) string {
	return fmt.Sprintf(`"heritage=meridian,meridian.dev/fleet=%s,meridian.dev/placement=%s"`, fleetName, unit)
}

// parseRegistry reads a registry TXT value; ok is false for anything else. A
// registry record of the fleet whose placement cannot be read is the fleet's, of
// no placement (unit is zero).
func parseRegistry(values []string) (fleetName string, unit fleet.UnitID, ok bool) {
	if len(values) != 1 {
		return "", fleet.UnitID{}, false
	}
	v := strings.Trim(values[0], `"`)
	fields := map[string]string{}
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		fields[k] = val
	}
	if fields["heritage"] != "meridian" || fields["meridian.dev/fleet"] == "" {
		return "", fleet.UnitID{}, false
	}
	unit, _ = fleet.ParseUnitID(fields["meridian.dev/placement"])
	return fields["meridian.dev/fleet"], unit, true
}

// registryFor returns the TXT registry record that marks r as owned by placement
// unit.
func registryFor(r Record, fleetName string, unit fleet.UnitID) Record {
	return Record{
		Name:          RegistryPrefix + r.Name,
		Type:          "TXT",
		SetIdentifier: r.SetIdentifier,
		Region:        r.Region,
		TTL:           registryTTL,
		Values:        []string{registryValue(fleetName, unit)},
	}
}

// Published returns the placements that have a record this fleet owns in the
// zone: what is in DNS now, whatever its health.
func (s State) Published() map[fleet.UnitID]bool {
	out := map[fleet.UnitID]bool{}
	for _, r := range s.Records {
		if r.Type != "TXT" || !strings.HasPrefix(r.Name, RegistryPrefix) {
			continue
		}
		if name, unit, ok := parseRegistry(r.Values); ok && name == s.Fleet && !unit.IsZero() {
			out[unit] = true
		}
	}
	return out
}

// Withdrawn returns the state after a withdrawal (a plan that only deletes) was
// applied in full: its records and health checks gone. The second DNS step of a
// pass plans from it instead of reading the zone again, so a pass reads the zone
// once; ok is false when ch does more than delete, and the zone must be read.
func (s State) Withdrawn(ch Changes) (next State, ok bool) {
	if len(ch.HealthChecks) > 0 {
		return State{}, false
	}
	gone := map[string]bool{}
	key := func(r Record) string { return setKey(r.Name, r.SetIdentifier) + "|" + r.Type }
	for _, g := range ch.Records {
		for _, c := range g.Changes {
			if c.Action != Delete {
				return State{}, false
			}
			gone[key(c.Record)] = true
		}
	}
	deleted := map[string]bool{}
	for _, h := range ch.DeleteHealthChecks {
		deleted[h.ID] = true
	}
	next = State{Fleet: s.Fleet, AccountHealthChecks: s.AccountHealthChecks - len(deleted), HealthCheckLimit: s.HealthCheckLimit, RecordSetLimit: s.RecordSetLimit}
	for _, r := range s.Records {
		if !gone[key(r)] {
			next.Records = append(next.Records, r)
		}
	}
	for _, h := range s.HealthChecks {
		if !deleted[h.ID] {
			next.HealthChecks = append(next.HealthChecks, h)
		}
	}
	return next, true
}
