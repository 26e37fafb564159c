package diff

import (
	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/render/secrets"
)

// Change is what happens to a unit, an object, a Secret key or a DNS endpoint
// between the base and the head revision.
type Change string

// The changes, as every format prints them.
const (
	// Added exists in the head revision only.
	Added Change = "added"
	// Changed exists in both revisions and differs.
	Changed Change = "changed"
	// Removed exists in the base revision only.
	Removed Change = "removed"
)

// Report is everything a change to a fleet repository does, ready to format. Its
// JSON form (field names in the tags) is stable for bots; docs/diff.md documents it.
// Every string in it is redacted.
type Report struct {
	// Base and Head are the compared revisions, as given to Compare.
	Base string `json:"base"`
	Head string `json:"head"`
	// Changed reports that any unit or DNS endpoint differs.
	Changed bool `json:"changed"`
	// Summary counts what changed.
	Summary Summary `json:"summary"`
	// Units are the units that differ, ordered by tenant, region and app (a
	// tenant's namespace unit before its apps).
	Units []Unit `json:"units"`
	// DNS are the endpoints that differ, ordered by placement.
	DNS []DNSChange `json:"dns"`
	// Guard is, per region with deletions, what the mass-deletion guard would do.
	Guard []RegionGuard `json:"deletionGuard"`
	// Notes say what the report does not cover, such as a guard not computed
	// under a filter.
	Notes []string `json:"notes"`

	redactor *secrets.Redactor
}

// Summary counts what a Report holds.
type Summary struct {
	// Tenants, Regions and Apps are touched by a changed unit or DNS endpoint,
	// sorted. A namespace unit touches its tenant and region only.
	Tenants []string `json:"tenants"`
	Regions []string `json:"regions"`
	Apps    []string `json:"apps"`
	// Addons are the platform addons touched by a changed unit, sorted.
	Addons []string `json:"addons,omitempty"`
	// Units counts the units that differ.
	Units int `json:"units"`
	// ObjectsAdded, ObjectsChanged and ObjectsRemoved count objects over all units.
	ObjectsAdded   int `json:"objectsAdded"`
	ObjectsChanged int `json:"objectsChanged"`
	ObjectsRemoved int `json:"objectsRemoved"`
	// DNSAdded, DNSChanged and DNSRemoved count endpoints.
	DNSAdded   int `json:"dnsAdded"`
	DNSChanged int `json:"dnsChanged"`
	DNSRemoved int `json:"dnsRemoved"`
	// HeldRegions are the regions whose deletions the guard would hold, sorted.
	HeldRegions []string `json:"heldRegions"`
}

// Unit is one unit that differs: a placement (tenant/region/app) or, when App is
// empty, a tenant's namespace in a region.
type Unit struct {
	// ID is the unit; in JSON tenant/region/app, tenant/region for a namespace
	// unit, or addon:region/name for an addon unit.
	ID fleet.UnitID `json:"unit"`
	// Tenant, Region and App name the unit; App is empty for a namespace unit.
	Tenant string `json:"tenant"`
	Region string `json:"region"`
	App    string `json:"app,omitempty"`
	// Addon names an addon unit's addon; such a unit has no Tenant and no App.
	Addon string `json:"addon,omitempty"`
	// Change is Added when only the head renders the unit, Removed when only the
	// base does, Changed otherwise.
	Change Change `json:"change"`
	// Objects are the objects that differ, ordered by API group, kind, namespace
	// and name.
	Objects []Object `json:"objects"`
	// Adopt is Added when the head lets the unit take over objects that exist in
	// a region but that Meridian did not create (adoptExisting) and the base did
	// not (or had no such unit), Removed when the head stops it, empty otherwise.
	Adopt Change `json:"adoptExisting,omitempty"`
}

// Object is one object that differs.
type Object struct {
	// Ref is Kind/namespace/name (Kind/name for a cluster-scoped object).
	Ref string `json:"ref"`
	// APIVersion, Kind, Namespace and Name identify the object (the head's
	// apiVersion when both revisions have it).
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// Change is what happens to the object.
	Change Change `json:"change"`
	// Diff is the unified diff of the object's YAML, redacted: every line of an
	// added object, the hunks of a changed one, empty for a removed one. It is
	// empty for a changed object when only redacted values changed (SecretKeys
	// then says which keys of a Secret).
	Diff string `json:"diff,omitempty"`
	// SecretKeys are the keys of a Secret whose values were added, changed or
	// removed, compared by digest; values are never shown.
	SecretKeys []SecretKey `json:"secretKeys,omitempty"`
}

// SecretKey is one key of a Secret's data (stringData merged over it, as the API
// server does) whose value differs.
type SecretKey struct {
	// Key is the key in data (or stringData).
	Key string `json:"key"`
	// Change is what happens to the key's value.
	Change Change `json:"change"`
}

// DNSChange is one endpoint (an exposed placement's DNS names and health check) that
// appears, changes or goes.
type DNSChange struct {
	// Placement is the placement; in JSON tenant/region/app.
	Placement fleet.UnitID `json:"placement"`
	// Tenant, Region and App name the placement.
	Tenant string `json:"tenant"`
	Region string `json:"region"`
	App    string `json:"app"`
	// Change is what happens to the endpoint.
	Change Change `json:"change"`
	// Name is the latency-routed name, which gets one record per region.
	Name string `json:"name"`
	// Regional is the region's own name, which the latency record points at.
	Regional string `json:"regional"`
	// AWSRegion routes the latency record.
	AWSRegion string `json:"awsRegion"`
	// Target is where the regional name points: type and target.
	Target string `json:"target"`
	// HealthCheck describes the health check, as protocol://name:port/path every
	// interval, failure threshold.
	HealthCheck string `json:"healthCheck"`
	// Fields are what changed, for Changed.
	Fields []FieldChange `json:"fields,omitempty"`
}

// FieldChange is one field of a DNS endpoint that changed.
type FieldChange struct {
	// Field is the field's path, such as healthCheck.path.
	Field string `json:"field"`
	// Base and Head are its values in the two revisions.
	Base string `json:"base"`
	Head string `json:"head"`
}

// RegionGuard is what the mass-deletion guard would do with one region's deletions,
// were the base revision applied and the head revision applied next.
type RegionGuard struct {
	// Region is the fleet's region name.
	Region string `json:"region"`
	// Deletions counts the objects the head revision deletes in the region.
	Deletions int `json:"deletions"`
	// Managed counts the objects the base revision has in the region.
	Managed int `json:"managed"`
	// MaxDeletePercent is the head fleet's spec.safety.maxDeletePercent.
	MaxDeletePercent int `json:"maxDeletePercent"`
	// Held reports that the deletions would be held: nothing deleted until a
	// commit allows it.
	Held bool `json:"held"`
	// AllowedByTrailer reports that the guard would hold the deletions but the head
	// commit's Meridian-Allow-Mass-Deletion trailer lets them through.
	AllowedByTrailer bool `json:"allowedByTrailer"`
	// Reason is why the guard holds (or would hold) the deletions.
	Reason string `json:"reason,omitempty"`
}
