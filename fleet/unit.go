package fleet

import (
	"cmp"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// UnitID names what Meridian renders, applies, records and health-checks as one
// piece in one region. It is one of three kinds:
//
//   - a tenant's placement of an app: Tenant, Region and App set;
//   - a tenant's namespace there with its isolation objects (a namespace unit):
//     Tenant and Region set, App empty;
//   - a platform addon in a region (an addon unit): Region and Addon set, no
//     Tenant and no App — it belongs to no tenant.
//
// It is a comparable value, so it keys maps directly. Its text form,
// tenant/region/app, tenant/region or addon:region/name, is what leaves the
// process (inventories, Route53 tags and registry records, JSON, logs); String
// and ParseUnitID are the only code that builds or reads that form. The colon
// cannot appear in a fleet name, so an addon's text never reads as a tenant's.
type UnitID struct {
	Tenant, Region, App string
	// Addon is the addon's name for an addon unit, empty for a tenant's units.
	Addon string
}

// addonPrefix starts the text form of an addon unit.
const addonPrefix = "addon:"

// NamespaceUnit names a tenant's namespace unit in a region.
func NamespaceUnit(tenant, region string) UnitID {
	return UnitID{Tenant: tenant, Region: region}
}

// AddonUnit names an addon's unit in a region.
func AddonUnit(region, addon string) UnitID {
	return UnitID{Region: region, Addon: addon}
}

// IsAddon reports whether the unit is a platform addon rather than a tenant's.
func (u UnitID) IsAddon() bool { return u.Addon != "" }

// IsNamespace reports whether the unit is a tenant's namespace unit rather than a
// placement of an app or an addon.
func (u UnitID) IsNamespace() bool { return u.App == "" && u.Addon == "" }

// Namespace returns the unit's tenant's namespace unit in the same region (the
// unit itself for a namespace unit): the one that must exist before it. An addon
// unit has none; it returns the zero UnitID.
func (u UnitID) Namespace() UnitID {
	if u.IsAddon() {
		return UnitID{}
	}
	return NamespaceUnit(u.Tenant, u.Region)
}

// Name is the unit's app or addon name; empty for a namespace unit.
func (u UnitID) Name() string { return cmp.Or(u.Addon, u.App) }

// IsZero reports whether the ID names nothing.
func (u UnitID) IsZero() bool { return u == UnitID{} }

// String is the unit's text form: tenant/region/app, tenant/region for a
// namespace unit, or addon:region/name for an addon unit.
func (u UnitID) String() string {
	switch {
	case u.IsAddon():
		return addonPrefix + u.Region + "/" + u.Addon
	case u.IsNamespace():
		return u.Tenant + "/" + u.Region
	}
	return u.Tenant + "/" + u.Region + "/" + u.App
}

// Compare orders units: every addon unit first (by region, then name), then
// tenants' units by tenant, region and app; a tenant's namespace unit comes before
// its placements in the same region.
func (u UnitID) Compare(v UnitID) int {
	if u.IsAddon() != v.IsAddon() {
		if u.IsAddon() {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(u.Tenant, v.Tenant), cmp.Compare(u.Region, v.Region), cmp.Compare(u.App, v.App), cmp.Compare(u.Addon, v.Addon))
}

// ParseUnitID reads a unit's text form, as String writes it. Each name must be a
// DNS-1123 label, as fleet names are.
func ParseUnitID(s string) (UnitID, error) {
	if rest, ok := strings.CutPrefix(s, addonPrefix); ok {
		parts := strings.Split(rest, "/")
		if len(parts) != 2 {
			return UnitID{}, fmt.Errorf("unit %q: want addon:region/name", s)
		}
		if err := fleetNames(s, parts); err != nil {
			return UnitID{}, err
		}
		return AddonUnit(parts[0], parts[1]), nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return UnitID{}, fmt.Errorf("unit %q: want tenant/region, tenant/region/app or addon:region/name", s)
	}
	if err := fleetNames(s, parts); err != nil {
		return UnitID{}, err
	}
	u := UnitID{Tenant: parts[0], Region: parts[1]}
	if len(parts) == 3 {
		u.App = parts[2]
	}
	return u, nil
}

// fleetNames checks that every part of unit text s is a fleet name.
func fleetNames(s string, parts []string) error {
	for _, p := range parts {
		if len(validation.IsDNS1123Label(p)) > 0 {
			return fmt.Errorf("unit %q: %q is not a fleet name (a DNS-1123 label)", s, p)
		}
	}
	return nil
}

// MarshalText writes the unit's text form, so that a UnitID is a string in JSON,
// as a field and as a map key.
func (u UnitID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText reads the unit's text form.
func (u *UnitID) UnmarshalText(b []byte) error {
	id, err := ParseUnitID(string(b))
	if err != nil {
		return err
	}
	*u = id
	return nil
}
