package helm

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// hookEvents are the hook events Helm knows, by their annotation spelling.
var hookEvents = map[string]bool{
	string(release.HookPreInstall):   true,
	string(release.HookPostInstall):  true,
	string(release.HookPreDelete):    true,
	string(release.HookPostDelete):   true,
	string(release.HookPreUpgrade):   true,
	string(release.HookPostUpgrade):  true,
	string(release.HookPreRollback):  true,
	string(release.HookPostRollback): true,
	string(release.HookTest):         true,
	"test-success":                   true, // Helm 2's spelling, still honoured by Helm 3
}

// rendered is one object and the file it came from.
type rendered struct {
	obj    *unstructured.Unstructured
	source string
}

// objects collects the objects of a chart's rendered files.
type objects []rendered

// add parses the rendered file source (named as in messages) into objects.
func (o *objects) add(source, content string) error {
	if strings.TrimSpace(content) == "" {
		return nil
	}
	docs := releaseutil.SplitManifests(content)
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b)) // manifest-2 < manifest-10
	})
	for i, k := range keys {
		if err := o.addDoc(source, i+1, docs[k]); err != nil {
			return err
		}
	}
	return nil
}

// addDoc parses the n-th YAML document of source. Its messages never quote the
// document: it may hold decrypted values.
//
// SplitManifests trims each document; helm writes every one followed by a
// newline, which a block scalar (|) ending the document keeps, so one is added
// back here.
func (o *objects) addDoc(source string, n int, doc string) error {
	js, err := yaml.YAMLToJSON([]byte(doc + "\n"))
	if err != nil {
		return fmt.Errorf("%s: rendered document %d is not valid YAML: %w; render the chart locally to see it", source, n, err)
	}
	var v any
	if err := utiljson.Unmarshal(js, &v); err != nil {
		return fmt.Errorf("%s: rendered document %d: %w", source, n, err)
	}
	if v == nil {
		return nil // empty, or only comments
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: rendered document %d is not a Kubernetes object (a mapping with apiVersion, kind and metadata)", source, n)
	}
	obj := &unstructured.Unstructured{Object: m}
	if err := checkObject(obj); err != nil {
		return fmt.Errorf("%s: rendered document %d: %w", source, n, err)
	}
	if obj.IsList() {
		items, _ := m["items"].([]any)
		for i, it := range items {
			im, ok := it.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: rendered document %d: %s item %d is not a Kubernetes object", source, n, obj.GetKind(), i)
			}
			item := &unstructured.Unstructured{Object: im}
			if err := checkObject(item); err != nil {
				return fmt.Errorf("%s: rendered document %d: %s item %d: %w", source, n, obj.GetKind(), i, err)
			}
			o.keep(item, source)
		}
		return nil
	}
	o.keep(obj, source)
	return nil
}

// checkObject refuses what the API server would refuse for lack of a type or a name.
func checkObject(obj *unstructured.Unstructured) error {
	apiVersion, _, _ := unstructured.NestedString(obj.Object, "apiVersion")
	kind, _, _ := unstructured.NestedString(obj.Object, "kind")
	switch {
	case apiVersion == "":
		return fmt.Errorf("no apiVersion")
	case kind == "":
		return fmt.Errorf("no kind")
	case obj.IsList():
		return nil
	}
	if _, ok := obj.Object["metadata"].(map[string]any); !ok {
		return fmt.Errorf("%s has no metadata", kind)
	}
	if obj.GetName() == "" && obj.GetGenerateName() == "" {
		return fmt.Errorf("%s has no metadata.name", kind)
	}
	return nil
}

// keep adds obj unless it is a hook Meridian never applies: a hook for an event
// Helm does not know (which Helm drops too), or one that runs at none of the
// install and upgrade events (a test, or a delete or rollback hook).
func (o *objects) keep(obj *unstructured.Unstructured, source string) {
	if events, ok := obj.GetAnnotations()[release.HookAnnotation]; ok {
		for _, e := range annotationValues(events) {
			if !hookEvents[e] {
				return
			}
		}
		if _, runs := hookOf(obj); !runs {
			return
		}
	}
	*o = append(*o, rendered{obj: obj, source: source})
}

// key is what identifies an object in a cluster.
type key struct {
	group, kind, namespace, name string
}

func keyOf(obj *unstructured.Unstructured) key {
	gv, _ := schema.ParseGroupVersion(obj.GetAPIVersion())
	return key{group: gv.Group, kind: obj.GetKind(), namespace: obj.GetNamespace(), name: obj.GetName()}
}

func (k key) String() string {
	s := k.kind
	if k.group != "" {
		s += "." + k.group
	}
	if k.namespace != "" {
		s += "/" + k.namespace
	}
	return s + "/" + k.name
}

// sorted returns the objects in a stable order (API group, kind, namespace, name, then
// version, source file and position for objects named by generateName), refusing an
// object rendered twice.
func (o objects) sorted() ([]*unstructured.Unstructured, error) {
	type item struct {
		rendered
		key key
		pos int
	}
	items := make([]item, len(o))
	for i, r := range o {
		items[i] = item{rendered: r, key: keyOf(r.obj), pos: i}
	}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(
			strings.Compare(a.key.group, b.key.group),
			strings.Compare(a.key.kind, b.key.kind),
			strings.Compare(a.key.namespace, b.key.namespace),
			strings.Compare(a.key.name, b.key.name),
			strings.Compare(a.obj.GetAPIVersion(), b.obj.GetAPIVersion()),
			strings.Compare(a.obj.GetGenerateName(), b.obj.GetGenerateName()),
			strings.Compare(a.source, b.source),
			cmp.Compare(a.pos, b.pos),
		)
	})
	out := make([]*unstructured.Unstructured, len(items))
	for i, it := range items {
		if i > 0 && it.key.name != "" && it.key == items[i-1].key {
			return nil, fmt.Errorf("%s: renders %s, which %s renders too; an object may be rendered once", it.source, it.key, items[i-1].source)
		}
		out[i] = it.obj
	}
	return out, nil
}
