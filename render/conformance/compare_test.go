package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/render"
)

// meridianObjects is everything Meridian renders for a unit, its Helm hooks
// included: what it applies.
func meridianObjects(u *render.Unit) []*unstructured.Unstructured {
	return u.All()
}

// parseManifests reads the YAML stream helm template or kustomize build prints
// the way the API server's clients read it (sigs.k8s.io/yaml, numbers as int64
// or float64), skipping empty documents.
func parseManifests(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		var v any
		if err := utiljson.Unmarshal(js, &v); err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		switch v := v.(type) {
		case nil:
		case map[string]any:
			out = append(out, &unstructured.Unstructured{Object: v})
		default:
			return nil, fmt.Errorf("document %d is not an object", n)
		}
	}
}

// builtinClusterScoped are Kubernetes' built-in kinds that have no namespace, as
// the API server's discovery says; kept here rather than taken from Meridian,
// whose own list is what the suite checks.
var builtinClusterScoped = []schema.GroupKind{
	{Kind: "Namespace"}, {Kind: "Node"}, {Kind: "PersistentVolume"},
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}, {Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"},
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}, {Group: "apiregistration.k8s.io", Kind: "APIService"},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}, {Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}, {Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"},
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "FlowSchema"}, {Group: "flowcontrol.apiserver.k8s.io", Kind: "PriorityLevelConfiguration"},
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}, {Group: "storage.k8s.io", Kind: "StorageClass"}, {Group: "storage.k8s.io", Kind: "CSIDriver"},
	{Group: "node.k8s.io", Kind: "RuntimeClass"}, {Group: "networking.k8s.io", Kind: "IngressClass"},
}

// clusterScopedKinds are the built-in cluster-scoped kinds and those of the
// CustomResourceDefinitions among objs whose scope is Cluster.
func clusterScopedKinds(objs []*unstructured.Unstructured) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for _, gk := range builtinClusterScoped {
		out[gk] = true
	}
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		if scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope"); scope == "Cluster" {
			out[schema.GroupKind{Group: group, Kind: kind}] = true
		}
	}
	return out
}

// objectKey is what identifies an object in a cluster.
type objectKey struct {
	group, kind, namespace, name string
}

func keyOf(o *unstructured.Unstructured) objectKey {
	gv, _ := schema.ParseGroupVersion(o.GetAPIVersion())
	return objectKey{group: gv.Group, kind: o.GetKind(), namespace: o.GetNamespace(), name: o.GetName()}
}

// String is Kind.group/namespace/name, as kubectl names objects.
func (k objectKey) String() string {
	s := k.kind
	if k.group != "" {
		s += "." + k.group
	}
	if k.namespace != "" {
		s += "/" + k.namespace
	}
	return s + "/" + k.name
}

// notInstallEvents are the Helm hook events, as the helm.sh/hook annotation
// spells them, at which Meridian never runs a hook: tests, deletion, rollback.
var notInstallEvents = []string{"test", "test-success", "pre-delete", "post-delete", "pre-rollback", "post-rollback"}

// hookOnly reports whether o is a Helm hook for the given events only.
func hookOnly(o *unstructured.Unstructured, events []string) bool {
	hooks, ok := o.GetAnnotations()["helm.sh/hook"]
	if !ok {
		return false
	}
	for _, h := range strings.Split(hooks, ",") {
		if !slices.Contains(events, strings.ToLower(strings.TrimSpace(h))) {
			return false
		}
	}
	return true
}

// meridianLabels and meridianAnnotations are what Meridian writes on every
// object of a placement (the render package's constants), with their values.
func meridianLabels(unit fleet.UnitID) map[string]string {
	return map[string]string{render.LabelManagedBy: render.ManagedByMeridian, render.LabelTenant: unit.Tenant, render.LabelRegion: unit.Region, render.LabelApp: unit.App}
}

func meridianAnnotations(unit fleet.UnitID, revision string) map[string]string {
	return map[string]string{render.AnnotationPlacement: unit.String(), render.AnnotationRevision: revision}
}

// difference is one way Meridian's objects of a unit differ from what helm or
// kustomize rendered.
type difference struct {
	// object names the object (objectKey.String), field the field that
	// differs, empty when the object itself is missing on one side.
	object, field string
	// text says how, for people.
	text string
}

func (d difference) String() string { return d.object + ": " + d.text }

// compare checks Meridian's objects of one unit against what the upstream tool
// (helm or kustomize) rendered, object for object, and returns every
// difference but those Meridian documents:
//   - its labels and annotations (replacing a chart's app.kubernetes.io/managed-by);
//   - the tenant's namespace on a namespaced object that names none, and no
//     namespace on an object of a cluster-scoped kind;
//   - no Helm hooks whose events are all tests, deletion or rollback.
//
// A cluster-scoped object is one that Meridian renders without a namespace.
func compare(tool string, upstream, meridian []*unstructured.Unstructured, unit fleet.UnitID, revision string) []difference {
	var diffs []difference
	add := func(k objectKey, field, format string, args ...any) {
		diffs = append(diffs, difference{object: k.String(), field: field, text: fmt.Sprintf(format, args...)})
	}
	clusterScoped := clusterScopedKinds(upstream)
	got := map[objectKey]*unstructured.Unstructured{}
	for _, o := range meridian {
		k := keyOf(o)
		if got[k] != nil {
			add(k, "", "Meridian renders it twice")
		}
		o = o.DeepCopy()
		for _, field := range []string{"labels", "annotations"} {
			expected := meridianLabels(unit)
			if field == "annotations" {
				expected = meridianAnnotations(unit, revision)
			}
			for key, v := range strip(o, field, expected) {
				add(k, "metadata."+field+"."+key, "Meridian's %s %s is %q, want %q", strings.TrimSuffix(field, "s"), key, v, expected[key])
			}
		}
		got[k] = o
	}

	want := map[objectKey]*unstructured.Unstructured{}
	for _, o := range upstream {
		o = o.DeepCopy()
		k := keyOf(o)
		clusterKey := objectKey{k.group, k.kind, "", k.name}
		switch nk := (objectKey{k.group, k.kind, unit.Tenant, k.name}); {
		case k.namespace == "" && got[nk] != nil && got[k] == nil:
			// Meridian puts a namespaced object that names none into the
			// tenant's namespace; which objects are namespaced only it knows.
			k = nk
			o.SetNamespace(unit.Tenant)
		case k.namespace != "" && got[k] == nil && got[clusterKey] != nil && clusterScoped[schema.GroupKind{Group: k.group, Kind: k.kind}]:
			// The kind is cluster-scoped: Meridian renders it without the
			// namespace a tool gave it, as the API server stores it.
			k = clusterKey
			o.SetNamespace("")
		}
		if want[k] != nil {
			add(k, "", "%s renders it twice", tool)
		}
		if hookOnly(o, notInstallEvents) {
			if got[k] != nil {
				add(k, "", "a Helm hook only for tests, deletion or rollback, which Meridian documents it does not render, is rendered")
			}
			delete(got, k)
			continue
		}
		// Meridian's own labels and annotations replace the chart's.
		strip(o, "labels", nil)
		strip(o, "annotations", nil)
		want[k] = o
	}

	for _, k := range sortedKeys(want) {
		g, ok := got[k]
		switch {
		case !ok:
			add(k, "", "%s renders it, Meridian does not", tool)
		default:
			for _, d := range fieldDiffs(want[k].Object, g.Object, "") {
				add(k, d.path, "%s", d.describe(tool))
			}
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := want[k]; !ok {
			add(k, "", "Meridian renders it, %s does not", tool)
		}
	}
	return diffs
}

// strip removes Meridian's keys from an object's labels or annotations
// (metadata[field]), and the field when that leaves it empty or it was null.
// With expected set, o is Meridian's: it returns the keys whose value is not the
// expected one, with the value found.
func strip(o *unstructured.Unstructured, field string, expected map[string]string) map[string]string {
	md, _ := o.Object["metadata"].(map[string]any)
	if v, ok := md[field]; ok && v == nil {
		// A chart's "labels:" with nothing under it; Meridian's own replace it.
		delete(md, field)
	}
	m, _ := md[field].(map[string]any)
	wrong := map[string]string{}
	for key, want := range expected {
		if got, _ := m[key].(string); got != want {
			wrong[key] = got
		}
	}
	for _, key := range []string{render.LabelManagedBy, render.LabelTenant, render.LabelRegion, render.LabelApp, render.AnnotationPlacement, render.AnnotationRevision} {
		delete(m, key)
	}
	if m != nil && len(m) == 0 {
		delete(md, field)
	}
	return wrong
}

func sortedKeys(m map[objectKey]*unstructured.Unstructured) []objectKey {
	return slices.SortedFunc(maps.Keys(m), func(a, b objectKey) int { return strings.Compare(a.String(), b.String()) })
}

// fieldDiff is one field at which two objects differ.
type fieldDiff struct {
	path  string
	a, b  any
	aOnly bool // the field is only in a
	bOnly bool // the field is only in b
}

// fieldDiffs lists the fields (spec.template.spec.containers[0].image) at which
// a and b differ: where their values differ, or where only one has the field.
func fieldDiffs(a, b any, path string) []fieldDiff {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok {
			break
		}
		var out []fieldDiff
		for _, k := range slices.Sorted(maps.Keys(a)) {
			if bv, ok := bm[k]; ok {
				out = append(out, fieldDiffs(a[k], bv, join(k))...)
			} else {
				out = append(out, fieldDiff{path: join(k), a: a[k], aOnly: true})
			}
		}
		for _, k := range slices.Sorted(maps.Keys(bm)) {
			if _, ok := a[k]; !ok {
				out = append(out, fieldDiff{path: join(k), b: bm[k], bOnly: true})
			}
		}
		return out
	case []any:
		bs, ok := b.([]any)
		if !ok || len(a) != len(bs) {
			break
		}
		var out []fieldDiff
		for i := range a {
			out = append(out, fieldDiffs(a[i], bs[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	return []fieldDiff{{path: path, a: a, b: b}}
}

// maxShown bounds how much of a value a failure quotes.
const maxShown = 300

// describe says how one field differs, quoting at most maxShown characters of
// each side: for two strings, the first line at which they differ.
func (d fieldDiff) describe(tool string) string {
	path := d.path
	if path == "" {
		path = "the object"
	}
	switch {
	case d.aOnly:
		return fmt.Sprintf("%s: only %s has it: %s", path, tool, shown(d.a))
	case d.bOnly:
		return fmt.Sprintf("%s: only Meridian has it: %s", path, shown(d.b))
	}
	as, aok := d.a.(string)
	bs, bok := d.b.(string)
	if aok && bok && (strings.Contains(as, "\n") || strings.Contains(bs, "\n")) {
		al, bl := strings.Split(as, "\n"), strings.Split(bs, "\n")
		line := func(lines []string, i int) string {
			if i >= len(lines) {
				return "(none: the text ends before)"
			}
			return shown(lines[i])
		}
		for i := range max(len(al), len(bl)) {
			if i >= len(al) || i >= len(bl) || al[i] != bl[i] {
				return fmt.Sprintf("%s: the texts (%d lines from %s, %d from Meridian) differ at line %d:\n      -%s %s\n      +meridian %s",
					path, len(al), tool, len(bl), i+1, tool, line(al, i), line(bl, i))
			}
		}
	}
	return fmt.Sprintf("%s:\n      -%s %s\n      +meridian %s", path, tool, shown(d.a), shown(d.b))
}

// shown is a value as JSON, cut to maxShown characters.
func shown(v any) string {
	js, err := json.Marshal(v)
	if err != nil {
		js = []byte(fmt.Sprint(v))
	}
	if len(js) > maxShown {
		return string(js[:maxShown]) + fmt.Sprintf("... (%d characters)", len(js))
	}
	return string(js)
}
