package fleet

import (
	"cmp"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// UnitID names what Meridian renders, applies, records and health-checks as one
// piece in one region: a tenant's placement of an app, or — when App is empty —
// the tenant's namespace there with its isolation objects (a namespace unit).
//
// It is a comparable value, so it keys maps directly. Its text form,
// tenant/region/app or tenant/region, is what leaves the process (inventories,
// Route53 tags and registry records, JSON, logs); String and ParseUnitID are the
// only code that builds or reads that form.
type UnitID struct {
	Tenant, Region, App string
}

// NamespaceUnit names a tenant's namespace unit in a region.
func NamespaceUnit(tenant, region string) UnitID {
	return UnitID{Tenant: tenant, Region: region}
}

// IsNamespace reports whether the unit is a tenant's namespace unit rather than a
// placement of an app.
func (u UnitID) IsNamespace() bool { return u.App == "" }

// Namespace returns the unit's tenant's namespace unit in the same region (the
// unit itself for a namespace unit): the one that must exist before it.
func (u UnitID) Namespace() UnitID { return NamespaceUnit(u.Tenant, u.Region) }

// IsZero reports whether the ID names nothing.
func (u UnitID) IsZero() bool { return u == UnitID{} }

// String is the unit's text form: tenant/region/app, or tenant/region for a
// namespace unit.
func (u UnitID) String() string {
	if u.IsNamespace() {
		return u.Tenant + "/" + u.Region
	}
	return u.Tenant + "/" + u.Region + "/" + u.App
}

// Compare orders units by tenant, region and app; a tenant's namespace unit comes
// before its placements in the same region.
func (u UnitID) Compare(v UnitID) int {
	return cmp.Or(cmp.Compare(u.Tenant, v.Tenant), cmp.Compare(u.Region, v.Region), cmp.Compare(u.App, v.App))
}

// ParseUnitID reads a unit's text form, as String writes it. Each name must be a
// DNS-1123 label, as fleet names are.
func ParseUnitID(s string) (UnitID, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return UnitID{}, fmt.Errorf("unit %q: want tenant/region or tenant/region/app", s)
	}
	for _, p := range parts {
		if len(validation.IsDNS1123Label(p)) > 0 {
			return UnitID{}, fmt.Errorf("unit %q: %q is not a fleet name (a DNS-1123 label)", s, p)
		}
	}
	u := UnitID{Tenant: parts[0], Region: parts[1]}
	if len(parts) == 3 {
		u.App = parts[2]
	}
	return u, nil
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
