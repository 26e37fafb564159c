package fleet

import (
	"cmp"
	"path"
	"slices"
	"strings"
)

// Placement is one app of one tenant in one region: the unit Meridian renders,
// applies, health-checks and publishes in DNS.
type Placement struct {
	// Tenant, Region and App are the objects the placement combines.
	Tenant *Tenant
	Region *Region
	App    *App
	// Namespace is where every namespaced object of the placement lands: the tenant's.
	Namespace string
	// Values are the app's values merged from app defaults, fleet, region, tenant and
	// tenant × region, in that order. Decrypted secrets are merged at render time
	// (ValuesWith) and never stored here.
	Values Values

	// layers are the plain layers Values was merged from, for ValuesWith.
	layers valueLayers
}

// valueLayers are a placement's plain values, layer by layer.
type valueLayers struct {
	app, tenant          []Values // files then inline values
	fleet, region, local Values   // local: tenant × region
}

// Secrets are a placement's decrypted values, by the layer they belong to.
type Secrets struct {
	// Fleet is fleet.secrets.sops.yaml; Region regions/<region>.secrets.sops.yaml.
	Fleet, Region map[string]any
	// Tenant is the app's key of tenants/<tenant>.secrets.sops.yaml; TenantRegion
	// the app's key of tenants/<tenant>.<region>.secrets.sops.yaml.
	Tenant, TenantRegion map[string]any
}

// ValuesWith merges the placement's values with its decrypted secrets, each at
// its place in the precedence (docs/fleet-format.md), lowest first: app
// defaults, fleet values, fleet secrets, region values, region secrets, tenant
// values, tenant × region values, tenant secrets, tenant × region secrets.
func (p Placement) ValuesWith(s Secrets) Values {
	l := p.layers
	layers := slices.Clone(l.app)
	layers = append(layers, l.fleet, s.Fleet, l.region, s.Region)
	layers = append(layers, l.tenant...)
	layers = append(layers, l.local, s.Tenant, s.TenantRegion)
	return Merge(layers...)
}

// ID names the placement's unit, the key used in status, metrics and logs.
func (p Placement) ID() UnitID {
	return UnitID{Tenant: p.Tenant.Metadata.Name, Region: p.Region.Metadata.Name, App: p.App.Metadata.Name}
}

// Placements expands the model into every placement, ordered by tenant, region and app.
func (m *Model) Placements() []Placement {
	var out []Placement
	for _, t := range m.Tenants {
		out = m.placementsOf(t, out)
	}
	sortPlacements(out)
	return out
}

// PlacementsOf is Placements of one tenant: none when the model has no tenant
// of that name. At thousands of placements it costs a fraction of Placements,
// which merges the values of every placement.
func (m *Model) PlacementsOf(tenant string) []Placement {
	t := m.Tenant(tenant)
	if t == nil {
		return nil
	}
	out := m.placementsOf(t, nil)
	sortPlacements(out)
	return out
}

// placementsOf appends the placements of tenant t to out.
func (m *Model) placementsOf(t *Tenant, out []Placement) []Placement {
	for _, regionName := range t.Spec.Regions {
		region := m.Region(regionName)
		for _, ta := range t.Spec.Apps {
			if len(ta.Regions) > 0 && !slices.Contains(ta.Regions, regionName) {
				continue
			}
			app := m.App(ta.Name)
			layers := m.layers(t, region, app, ta)
			out = append(out, Placement{
				Tenant:    t,
				Region:    region,
				App:       app,
				Namespace: t.Metadata.Name,
				Values:    Placement{layers: layers}.ValuesWith(Secrets{}),
				layers:    layers,
			})
		}
	}
	return out
}

// sortPlacements orders placements by tenant, region and app.
func sortPlacements(out []Placement) {
	slices.SortFunc(out, func(a, b Placement) int {
		return cmp.Or(
			cmp.Compare(a.Tenant.Metadata.Name, b.Tenant.Metadata.Name),
			cmp.Compare(a.Region.Metadata.Name, b.Region.Metadata.Name),
			cmp.Compare(a.App.Metadata.Name, b.App.Metadata.Name))
	})
}

// layers returns a placement's plain values layer by layer.
func (m *Model) layers(t *Tenant, region *Region, app *App, ta TenantApp) valueLayers {
	return valueLayers{
		app:    append(m.files(app.Source, app.Spec.ValuesFiles), app.Spec.Values),
		fleet:  m.Fleet.Spec.Values,
		region: region.Spec.Values,
		tenant: append(m.files(t.Source, ta.ValuesFiles), ta.Values),
		local:  ta.RegionValues[region.Metadata.Name],
	}
}

// files returns the loaded values files that src names, in order.
func (m *Model) files(src Source, rel []string) []Values {
	out := make([]Values, len(rel))
	for i, r := range rel {
		out[i] = m.valuesFiles[path.Join(path.Dir(src.File), r)]
	}
	return out
}

// Hostnames returns the DNS names clients use for an exposed placement: the global
// latency-routed name <subdomain>.<tenant>.<zone> and the regional name
// <subdomain>.<tenant>.<region>.<zone>. ok is false when the app is not exposed.
func (p Placement) Hostnames(zone string) (global, regional string, ok bool) {
	e := p.App.Spec.Expose
	if e == nil {
		return "", "", false
	}
	zone = strings.TrimSuffix(zone, ".")
	global = e.Subdomain + "." + p.Tenant.Metadata.Name + "." + zone
	regional = e.Subdomain + "." + p.Tenant.Metadata.Name + "." + p.Region.Metadata.Name + "." + zone
	return global, regional, true
}

// AddonPlacement is one addon in one region: a unit that belongs to no tenant.
type AddonPlacement struct {
	Addon  *Addon
	Region *Region
	// Values are the addon's values merged from its valuesFiles, values and
	// regionValues of this region, in that order. An addon is not a tenant's
	// placement: fleet and region values, meant for tenants' apps, are not merged.
	Values Values
}

// ID names the addon's unit in the region.
func (p AddonPlacement) ID() UnitID { return AddonUnit(p.Region.Metadata.Name, p.Addon.Metadata.Name) }

// AddonPlacements expands the model's addons into the regions each selects,
// ordered by region and addon.
func (m *Model) AddonPlacements() []AddonPlacement {
	var out []AddonPlacement
	for _, r := range m.Regions {
		for _, a := range m.AddonsOf(r) {
			layers := m.files(a.Source, a.Spec.ValuesFiles)
			layers = append(layers, a.Spec.Values, a.Spec.RegionValues[r.Metadata.Name])
			out = append(out, AddonPlacement{Addon: a, Region: r, Values: Merge(layers...)})
		}
	}
	return out
}
