package render

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"meridian.dev/meridian/fleet"
)

// FactsKey is the values key of a placement's facts among the variables of a
// Kustomize app that substitutes (meridian_tenant, ...). A chart gets them only
// under the key its App names (fleet.HelmSource.FactsKey).
const FactsKey = "meridian"

// Facts are the fleet facts of a placement in the DNS zone, as the values a chart
// sees under its App's facts key.
func Facts(p fleet.Placement, zone string) map[string]any {
	f := map[string]any{
		"tenant":    p.Tenant.Metadata.Name,
		"region":    p.Region.Metadata.Name,
		"awsRegion": p.Region.Spec.AWSRegion,
		"app":       p.App.Metadata.Name,
		"namespace": p.Namespace,
		"zone":      strings.TrimSuffix(zone, "."),
	}
	if global, regional, ok := p.Hostnames(zone); ok {
		f["host"] = global
		f["regionalHost"] = regional
	}
	return f
}

// AddonFacts are the fleet facts of an addon in a region, as the values its chart
// sees under its facts key: region, awsRegion, addon, namespace and zone.
func AddonFacts(p fleet.AddonPlacement, zone string) map[string]any {
	return map[string]any{
		"region":    p.Region.Metadata.Name,
		"awsRegion": p.Region.Spec.AWSRegion,
		"addon":     p.Addon.Metadata.Name,
		"namespace": p.Addon.Spec.Namespace,
		"zone":      strings.TrimSuffix(zone, "."),
	}
}

// substitutionVars flattens values into the variables a Kustomize app that
// substitutes can use with ${name}: facts as meridian_tenant, meridian_host, ...,
// and every scalar value by its path joined with underscores (image.tag →
// image_tag). Lists are not flattened.
func substitutionVars(values map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			name := prefix + sanitizeVar(k)
			switch v := m[k].(type) {
			case map[string]any:
				walk(name+"_", v)
			case fleet.Values:
				walk(name+"_", v)
			case string:
				out[name] = v
			case bool:
				out[name] = strconv.FormatBool(v)
			case int:
				out[name] = strconv.Itoa(v)
			case int64:
				out[name] = strconv.FormatInt(v, 10)
			case float64:
				out[name] = strconv.FormatFloat(v, 'f', -1, 64)
			}
		}
	}
	walk("", values)
	return out
}

// sanitizeVar makes a values key usable in a ${name} variable.
func sanitizeVar(k string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, k)
}
