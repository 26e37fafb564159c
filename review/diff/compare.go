package diff

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/secrets"
)

// Revision is one side of a comparison: a revision of the fleet repository, loaded
// and rendered.
type Revision struct {
	// Name is how the report names the revision, typically its commit hash.
	Name string
	// Model is the fleet loaded at the revision.
	Model *fleet.Model
	// Result is the revision rendered. It must hold no errors: a unit that failed
	// to render would read as removed.
	Result *render.Result
}

// Options tune a comparison.
type Options struct {
	// Filter is the filter both revisions were rendered with; it selects the DNS
	// endpoints too. With a tenant or app in it, the mass-deletion guard is not
	// computed, since the guard counts whole regions.
	Filter render.Filter
	// AllowMassDeletion reports that the head commit carries the trailer that
	// lets its deletions through the guard.
	AllowMassDeletion bool
}

// ErrRenderFailed is returned by Compare when a revision holds render errors.
var ErrRenderFailed = errors.New("units failed to render")

// Compare reports what applying head after base would change. Secret values of
// both revisions — those decrypted for the results and every value of their
// Secrets — are redacted from everything in the Report and from what the
// formatters write.
func Compare(base, head Revision, opts Options) (*Report, error) {
	for _, side := range []Revision{base, head} {
		if n := len(side.Result.Errors); n > 0 {
			return nil, fmt.Errorf("revision %s: %d %w; a diff would show them as removed", side.Name, n, ErrRenderFailed)
		}
	}
	r := &Report{
		Base: base.Name, Head: head.Name,
		Units: []Unit{}, DNS: []DNSChange{}, Guard: []RegionGuard{}, Notes: []string{},
		redactor: secrets.NewRedactor(append(base.Result.Shown(), head.Result.Shown()...)),
	}
	units, err := r.compareUnits(base.Result, head.Result)
	if err != nil {
		return nil, err
	}
	r.Units = units
	r.DNS = compareDNS(base.Model, head.Model, opts.Filter)
	r.Guard, r.Notes = guard(base, head, opts)
	r.redactReport()
	r.summarize()
	return r, nil
}

// sides pairs what the base and the head hold under one key; nil means absent.
type sides[T any] struct{ base, head T }

func (r *Report) compareUnits(base, head *render.Result) ([]Unit, error) {
	baseRedacted, err := base.Redact(base.Units)
	if err != nil {
		return nil, err
	}
	headRedacted, err := head.Redact(head.Units)
	if err != nil {
		return nil, err
	}
	type pair struct{ raw, shown *render.Unit }
	byID := map[fleet.UnitID]*sides[pair]{}
	at := func(id fleet.UnitID) *sides[pair] {
		if byID[id] == nil {
			byID[id] = &sides[pair]{}
		}
		return byID[id]
	}
	for i, u := range base.Units {
		at(u.ID()).base = pair{u, baseRedacted[i]}
	}
	for i, u := range head.Units {
		at(u.ID()).head = pair{u, headRedacted[i]}
	}
	ids := make([]*render.Unit, 0, len(byID))
	for _, s := range byID {
		ids = append(ids, cmp.Or(s.head.raw, s.base.raw))
	}
	slices.SortFunc(ids, func(a, b *render.Unit) int { return a.ID().Compare(b.ID()) })

	out := []Unit{}
	for _, id := range ids {
		s := byID[id.ID()]
		u := Unit{ID: id.ID(), Tenant: id.Tenant, Region: id.Region, App: id.App, Addon: id.Addon, Change: Changed, Adopt: adoptChange(s.base.raw, s.head.raw)}
		switch {
		case s.base.raw == nil:
			u.Change = Added
		case s.head.raw == nil:
			u.Change = Removed
		case s.base.raw.Digest == s.head.raw.Digest && u.Adopt == "":
			continue // equal digests mean equal objects
		}
		var objects sides[[]*unstructured.Unstructured]
		var shown sides[[]*unstructured.Unstructured]
		if s.base.raw != nil {
			objects.base, shown.base = s.base.raw.All(), s.base.shown.All()
		}
		if s.head.raw != nil {
			objects.head, shown.head = s.head.raw.All(), s.head.shown.All()
		}
		if u.Objects, err = r.compareObjects(objects, shown); err != nil {
			return nil, fmt.Errorf("%s: %w", u.ID, err)
		}
		if len(u.Objects) > 0 || u.Adopt != "" {
			out = append(out, u)
		}
	}
	return out, nil
}

// adoptChange says whether the head starts (Added) or stops (Removed) letting a
// unit adopt what exists, or neither; a nil side has no such unit.
func adoptChange(base, head *render.Unit) Change {
	before, after := base != nil && base.AdoptExisting, head != nil && head.AdoptExisting
	switch {
	case after && !before:
		return Added
	case before && !after && head != nil:
		return Removed
	}
	return ""
}

// compareObjects compares the objects of one unit: raw to decide what changed,
// shown (redacted) to print it.
func (r *Report) compareObjects(raw, shown sides[[]*unstructured.Unstructured]) ([]Object, error) {
	type entry struct{ raw, shown *unstructured.Unstructured }
	byKey := map[string]*sides[entry]{}
	var keys []*unstructured.Unstructured
	at := func(o *unstructured.Unstructured) *sides[entry] {
		k := objectKey(o)
		if byKey[k] == nil {
			byKey[k] = &sides[entry]{}
			keys = append(keys, o)
		}
		return byKey[k]
	}
	for i, o := range raw.base {
		at(o).base = entry{o, shown.base[i]}
	}
	for i, o := range raw.head {
		at(o).head = entry{o, shown.head[i]}
	}
	slices.SortFunc(keys, compareObjectOrder)

	var out []Object
	for _, k := range keys {
		s := byKey[objectKey(k)]
		o := s.head.raw
		if o == nil {
			o = s.base.raw
		}
		obj := Object{
			Ref: render.ObjectRef(o), APIVersion: o.GetAPIVersion(), Kind: o.GetKind(),
			Namespace: o.GetNamespace(), Name: o.GetName(),
		}
		switch {
		case s.base.raw == nil:
			obj.Change = Added
			text, err := r.yaml(s.head.shown)
			if err != nil {
				return nil, err
			}
			obj.Diff = Unified("", text)
			obj.SecretKeys = secretKeys(nil, s.head.raw)
		case s.head.raw == nil:
			obj.Change = Removed
		default:
			equal, err := equalObjects(s.base.raw, s.head.raw)
			if err != nil {
				return nil, err
			}
			if equal {
				continue
			}
			obj.Change = Changed
			before, err := r.yaml(s.base.shown)
			if err != nil {
				return nil, err
			}
			after, err := r.yaml(s.head.shown)
			if err != nil {
				return nil, err
			}
			obj.Diff = Unified(before, after)
			obj.SecretKeys = secretKeys(s.base.raw, s.head.raw)
		}
		out = append(out, obj)
	}
	return out, nil
}

// objectKey identifies an object within a unit whatever its API version, as the
// inventory does.
func objectKey(o *unstructured.Unstructured) string {
	gvk := o.GroupVersionKind()
	return gvk.Group + "/" + gvk.Kind + "/" + o.GetNamespace() + "/" + o.GetName()
}

// compareObjectOrder orders objects as render does: API group, kind, namespace, name.
func compareObjectOrder(a, b *unstructured.Unstructured) int {
	return cmp.Or(
		cmp.Compare(a.GroupVersionKind().Group, b.GroupVersionKind().Group),
		cmp.Compare(a.GetKind(), b.GetKind()),
		cmp.Compare(a.GetNamespace(), b.GetNamespace()),
		cmp.Compare(a.GetName(), b.GetName()))
}

// withoutRevision returns a copy of o without the revision annotation, which
// differs between any two revisions.
func withoutRevision(o *unstructured.Unstructured) *unstructured.Unstructured {
	c := o.DeepCopy()
	if a := c.GetAnnotations(); a != nil {
		if _, ok := a[render.AnnotationRevision]; ok {
			delete(a, render.AnnotationRevision)
			if len(a) == 0 {
				a = nil
			}
			c.SetAnnotations(a)
		}
	}
	return c
}

func equalObjects(a, b *unstructured.Unstructured) (bool, error) {
	ja, err := json.Marshal(withoutRevision(a).Object)
	if err != nil {
		return false, fmt.Errorf("%s: %w", render.ObjectRef(a), err)
	}
	jb, err := json.Marshal(withoutRevision(b).Object)
	if err != nil {
		return false, fmt.Errorf("%s: %w", render.ObjectRef(b), err)
	}
	return bytes.Equal(ja, jb), nil
}

// yaml prints a redacted object as YAML with sorted keys, without the revision
// annotation, redacted once more with every secret value of both revisions.
func (r *Report) yaml(o *unstructured.Unstructured) (string, error) {
	data, err := yaml.Marshal(withoutRevision(o).Object)
	if err != nil {
		return "", fmt.Errorf("%s: %w", render.ObjectRef(o), err)
	}
	return string(r.redactor.Redact(data)), nil
}

// secretDigests returns a digest of each value of a Secret, by key: data decoded,
// with stringData merged over it as the API server does.
func secretDigests(o *unstructured.Unstructured) map[string][32]byte {
	if !render.IsSecret(o) {
		return nil
	}
	out := map[string][32]byte{}
	if data, ok := o.Object["data"].(map[string]any); ok {
		for k, v := range data {
			s, _ := v.(string)
			plain, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				plain = []byte(s) // compared as it is; the API server would refuse it
			}
			out[k] = sha256.Sum256(plain)
		}
	}
	if data, ok := o.Object["stringData"].(map[string]any); ok {
		for k, v := range data {
			s, _ := v.(string)
			out[k] = sha256.Sum256([]byte(s))
		}
	}
	return out
}

// secretKeys compares two versions of a Secret key by key; base is nil for an
// added Secret.
func secretKeys(base, head *unstructured.Unstructured) []SecretKey {
	b, h := secretDigests(base), secretDigests(head)
	var out []SecretKey
	for k, hd := range h {
		bd, ok := b[k]
		switch {
		case !ok:
			out = append(out, SecretKey{Key: k, Change: Added})
		case bd != hd:
			out = append(out, SecretKey{Key: k, Change: Changed})
		}
	}
	for k := range b {
		if _, ok := h[k]; !ok {
			out = append(out, SecretKey{Key: k, Change: Removed})
		}
	}
	slices.SortFunc(out, func(a, b SecretKey) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// redactReport runs every string of the report that did not come from a redacted
// object through the redactor.
func (r *Report) redactReport() {
	red := r.redactor.RedactString
	for i := range r.DNS {
		d := &r.DNS[i]
		d.Name, d.Regional, d.Target, d.HealthCheck = red(d.Name), red(d.Regional), red(d.Target), red(d.HealthCheck)
		for j := range d.Fields {
			f := &d.Fields[j]
			f.Base, f.Head = red(f.Base), red(f.Head)
		}
	}
	for i := range r.Guard {
		r.Guard[i].Reason = red(r.Guard[i].Reason)
	}
	for i := range r.Notes {
		r.Notes[i] = red(r.Notes[i])
	}
	for i := range r.Units {
		for j := range r.Units[i].Objects {
			o := &r.Units[i].Objects[j]
			o.Ref, o.Name, o.Diff = red(o.Ref), red(o.Name), red(o.Diff)
			for k := range o.SecretKeys {
				o.SecretKeys[k].Key = red(o.SecretKeys[k].Key)
			}
		}
	}
}

// summarize fills the Summary and Changed from the units, DNS and guard.
func (r *Report) summarize() {
	s := Summary{Tenants: []string{}, Regions: []string{}, Apps: []string{}, HeldRegions: []string{}}
	touch := func(tenant, region, app string) {
		s.Tenants = append(s.Tenants, tenant)
		s.Regions = append(s.Regions, region)
		if app != "" {
			s.Apps = append(s.Apps, app)
		}
	}
	for _, u := range r.Units {
		if u.Addon != "" {
			s.Addons = append(s.Addons, u.Addon)
			s.Regions = append(s.Regions, u.Region)
		} else {
			touch(u.Tenant, u.Region, u.App)
		}
		s.Units++
		for _, o := range u.Objects {
			switch o.Change {
			case Added:
				s.ObjectsAdded++
			case Changed:
				s.ObjectsChanged++
			case Removed:
				s.ObjectsRemoved++
			}
		}
	}
	for _, d := range r.DNS {
		touch(d.Tenant, d.Region, d.App)
		switch d.Change {
		case Added:
			s.DNSAdded++
		case Changed:
			s.DNSChanged++
		case Removed:
			s.DNSRemoved++
		}
	}
	for _, g := range r.Guard {
		if g.Held {
			s.HeldRegions = append(s.HeldRegions, g.Region)
		}
	}
	for _, list := range []*[]string{&s.Tenants, &s.Regions, &s.Apps, &s.Addons, &s.HeldRegions} {
		slices.Sort(*list)
		*list = slices.Compact(*list)
	}
	r.Summary = s
	r.Changed = len(r.Units) > 0 || len(r.DNS) > 0
}

// plural returns one or many by n.
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// joinOr joins names, or returns none when there are none.
func joinOr(names []string, none string) string {
	if len(names) == 0 {
		return none
	}
	return strings.Join(names, ", ")
}
