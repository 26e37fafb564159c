package openapi

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/render"
)

// Finding is a problem of a rendered fleet: of one rendered object, or of a
// placement that did not render. It never holds a value of the object.
type Finding struct {
	// File is the fleet file the problem traces back to: the app's app.yaml for what
	// its chart or base renders, the tenant's file for a placement that did not
	// render or for its namespace objects, the region's file for its version.
	File string `json:"file"`
	// Placement is tenant/region/app, or tenant/region for a tenant's namespace.
	Placement string `json:"placement,omitempty"`
	// Object is Kind/namespace/name, or Kind/name for a cluster-scoped object.
	Object string `json:"object,omitempty"`
	// Field is the path of the offending field, such as spec.replicas.
	Field string `json:"field,omitempty"`
	// Message says what is wrong and how to fix it.
	Message string `json:"message"`
	// Others counts the other placements where the same object has the same problem;
	// they are not listed one by one.
	Others int `json:"others,omitempty"`
}

// Error reads file: placement: object: field: message.
func (f *Finding) Error() string {
	parts := []string{f.File}
	for _, p := range []string{f.Placement, f.Object, f.Field} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	msg := f.Message
	if f.Others > 0 {
		msg += fmt.Sprintf(" (and in %d other %s)", f.Others, plural(f.Others, "placement", "placements"))
	}
	return strings.Join(append(parts, msg), ": ")
}

// Report is what CheckRendered found.
type Report struct {
	// Errors make the fleet invalid; Warnings do not.
	Errors, Warnings []*Finding
	// Objects counts the rendered objects checked.
	Objects int
	// Versions are the Kubernetes minor versions whose schemas were used, sorted.
	Versions []string
}

// CheckRendered checks a rendered fleet: every placement rendered; every object is
// of a kind its region's Kubernetes version serves (or a CustomResourceDefinition
// in the fleet defines) and fits its schema; a tenant app's objects are in the
// tenant's namespace and cluster-scoped only where the app allows the kind; and
// every key of a rendered Secret holds a value from the tenant's SOPS file rather
// than from plain values (a warning). secretValues are the decrypted values (or
// placeholders) the render used; a Secret key holding one of them came from the
// SOPS file. The same problem of the same object in several placements is
// reported once, with a count of the others.
func CheckRendered(m *fleet.Model, res *render.Result, secretValues []string) (*Report, error) {
	c := &checker{model: m, secretValues: secretValues, seen: map[string]*Finding{}, report: &Report{}}
	var crds []*unstructured.Unstructured
	for _, u := range res.Units {
		crds = append(crds, u.Objects...)
	}
	validators := map[string]*Validator{} // by region
	versions := map[string]bool{}
	for _, r := range m.Regions {
		s, note, err := ForVersion(r.Spec.KubernetesVersion)
		if err != nil {
			return nil, fmt.Errorf("%s: spec.kubernetesVersion: %w", r.Source.File, err)
		}
		if note != "" {
			c.add(true, &Finding{File: r.Source.File, Field: "spec.kubernetesVersion", Message: note})
		}
		validators[r.Metadata.Name] = s.NewValidator(crds)
		versions[s.Minor] = true
	}
	c.report.Versions = slices.Sorted(maps.Keys(versions))

	placements := map[fleet.UnitID]fleet.Placement{}
	for _, p := range m.Placements() {
		placements[p.ID()] = p
	}
	for _, e := range res.Errors {
		c.unitError(e, placements)
	}
	for _, u := range res.Units {
		v := validators[u.Region]
		file := unitFile(m, u.ID())
		p, isApp := placements[u.ID()]
		if isApp {
			file = p.App.Source.File
		}
		for _, obj := range u.All() {
			c.report.Objects++
			at := &Finding{File: file, Placement: u.ID().String(), Object: render.ObjectRef(obj)}
			for _, problem := range v.Validate(obj) {
				c.add(problem.Warning, at.with(problem.Field, problem.Message))
			}
			if isApp {
				c.tenantPolicy(v, p, obj, at)
				c.secretSources(p, obj, at)
			}
		}
	}
	for _, list := range [][]*Finding{c.report.Errors, c.report.Warnings} {
		slices.SortFunc(list, func(a, b *Finding) int {
			return cmp.Or(strings.Compare(a.File, b.File), strings.Compare(a.Placement, b.Placement),
				strings.Compare(a.Object, b.Object), strings.Compare(a.Field, b.Field), strings.Compare(a.Message, b.Message))
		})
	}
	return c.report, nil
}

// unitFile is the fleet file a unit comes from, before its app's: the addon's
// addon.yaml, or the tenant's file; empty when the model has neither.
func unitFile(m *fleet.Model, id fleet.UnitID) string {
	if id.IsAddon() {
		if a := m.Addon(id.Addon); a != nil {
			return a.Source.File
		}
		return ""
	}
	if t := m.Tenant(id.Tenant); t != nil {
		return t.Source.File
	}
	return ""
}

type checker struct {
	model        *fleet.Model
	secretValues []string
	report       *Report
	// seen holds the first finding of each problem, keyed without the placement, so
	// that the same object's problem in other placements only counts.
	seen map[string]*Finding
}

func (f *Finding) with(field, message string) *Finding {
	out := *f
	out.Field, out.Message = field, message
	return &out
}

// add records a finding, or counts it when another placement already had it.
func (c *checker) add(warning bool, f *Finding) {
	kind, _, _ := strings.Cut(f.Object, "/")
	name := f.Object[strings.LastIndex(f.Object, "/")+1:]
	key := fmt.Sprintf("%t\x00%s\x00%s/%s\x00%s\x00%s", warning, f.File, kind, name, f.Field, f.Message)
	if first, ok := c.seen[key]; ok {
		first.Others++
		return
	}
	c.seen[key] = f
	if warning {
		c.report.Warnings = append(c.report.Warnings, f)
	} else {
		c.report.Errors = append(c.report.Errors, f)
	}
}

// unitError reports a unit that did not render, traced to the app's file (or the
// tenant's for its namespace), whose name the cause no longer needs to repeat.
func (c *checker) unitError(e *render.UnitError, placements map[fleet.UnitID]fleet.Placement) {
	file := unitFile(c.model, e.Unit)
	if p, ok := placements[e.Unit]; ok {
		file = p.App.Source.File
	}
	f := &Finding{File: file, Placement: e.Unit.String(), Message: e.Err.Error()}
	var fileErr *render.FileError
	if errors.As(e.Err, &fileErr) && fileErr.File == file {
		f.Message = fileErr.Err.Error()
	}
	var objErr *render.ObjectError
	if errors.As(e.Err, &objErr) {
		f.Object, f.Message = objErr.Object, objErr.Err.Error()
	}
	c.add(false, f)
}

// tenantPolicy refuses an object of a tenant app outside the tenant's namespace,
// and a cluster-scoped one the app does not allow. Rendering already confines
// objects by a list of cluster-scoped kinds; this check uses the scope the region's
// Kubernetes version (or a CRD in the fleet) gives the kind.
func (c *checker) tenantPolicy(v *Validator, p fleet.Placement, obj *unstructured.Unstructured, at *Finding) {
	namespaced, known := v.Namespaced(obj.GroupVersionKind())
	if !known {
		return
	}
	kind := obj.GetKind()
	switch {
	case !namespaced && !slices.Contains(p.App.Spec.AllowClusterScoped, kind):
		c.add(false, at.with("", fmt.Sprintf("cluster-scoped kind %s is refused for tenant apps; if the app must create it, add %q to the app's spec.allowClusterScoped", kind, kind)))
	case namespaced && obj.GetNamespace() != p.Namespace:
		c.add(false, at.with("metadata.namespace", fmt.Sprintf("is not the tenant's namespace %q; a tenant's objects live in its namespace only: remove the namespace from the template", p.Namespace)))
	}
}

// secretSources warns about every key of a rendered Secret whose value holds no
// secret from the tenant's SOPS file but a string from the placement's plain
// values: it was committed in plain text.
func (c *checker) secretSources(p fleet.Placement, obj *unstructured.Unstructured, at *Finding) {
	if obj.GetAPIVersion() != "v1" || obj.GetKind() != "Secret" {
		return
	}
	plain := stringLeaves(map[string]any(p.Values), "")
	for _, field := range []string{"data", "stringData"} {
		entries, _, _ := unstructured.NestedMap(obj.Object, field)
		for _, key := range slices.Sorted(maps.Keys(entries)) {
			value, _ := entries[key].(string)
			if field == "data" {
				decoded, err := base64.StdEncoding.DecodeString(value)
				if err != nil {
					continue // the schema check reports it
				}
				value = string(decoded)
			}
			if value == "" || slices.ContainsFunc(c.secretValues, func(s string) bool { return s != "" && strings.Contains(value, s) }) {
				continue
			}
			for _, leaf := range plain {
				if len(leaf.value) >= minPlainSecret && strings.Contains(value, leaf.value) {
					c.add(true, at.with(field+"."+key, fmt.Sprintf("comes from the plain value %s, not from the tenant's SOPS file; move that value to tenants/%s%s (sops --encrypt) and rotate it", leaf.path, p.Tenant.Metadata.Name, fleet.SecretsSuffix)))
					break
				}
			}
		}
	}
}

// minPlainSecret is the shortest plain value taken to be the source of a Secret's
// value: shorter ones (a port, "true") match by chance.
const minPlainSecret = 6

type leaf struct{ path, value string }

// stringLeaves lists the string values of a values tree with their key paths,
// sorted by path.
func stringLeaves(v map[string]any, prefix string) []leaf {
	var out []leaf
	for _, k := range slices.Sorted(maps.Keys(v)) {
		switch t := v[k].(type) {
		case string:
			if t != Placeholder {
				out = append(out, leaf{join(prefix, k), t})
			}
		case map[string]any:
			out = append(out, stringLeaves(t, join(prefix, k))...)
		case fleet.Values:
			out = append(out, stringLeaves(t, join(prefix, k))...)
		}
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
