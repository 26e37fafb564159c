package live

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// lastApplied is kubectl's copy of the whole object it applied: as large as the
// object, and read by nothing Meridian does.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// FieldManager is the server-side apply field manager Meridian writes with
// (apply.FieldManager is this one): its entry of an object's managed fields is
// the one AppliedFields fingerprints.
const FieldManager = "meridian"

// appliedFieldsKey is where trim keeps the AppliedFields of the object it trims,
// and where Object.Unstructured puts them back: a top-level key that no
// Kubernetes object has (field names hold no "/"), set on the watch's trimmed
// copy only, which is never written anywhere.
const appliedFieldsKey = "meridian.dev/applied-fields"

// Trim is the informers' transform: it drops from an object what makes it large
// and no reader of the cache needs (see trim), and returns what is left as the
// *Object the informer stores: JSON, a fraction of the decoded object's heap.
// Informers may transform an object twice: given an *Object, Trim returns it as
// it is. Any other value but an *unstructured.Unstructured is returned as is too.
func Trim(obj any) (any, error) {
	switch o := obj.(type) {
	case *Object:
		return o, nil
	case *unstructured.Unstructured:
		return compact(trim(o))
	default:
		return obj, nil
	}
}

// trim drops from u, in place, what makes it large and no reader of the cache
// needs, and returns it. Kept: metadata but its managed fields and kubectl's
// last-applied annotation (labels and annotations say which unit an object
// belongs to; generation and deletionTimestamp are read by kstatus), spec but
// the parts named below (kstatus reads replicas, update
// strategies, progress deadlines, parallelism, a Service's type), and status
// (what kstatus reads most). Dropped:
//   - metadata.managedFields: the largest part of most objects. Only the
//     fingerprint of Meridian's own apply entry is kept (AppliedFields, read back
//     with WatchedFields): a drift check compares it with the one its own apply
//     left (apply.Applier.Drift). Other managers' entries are dropped.
//   - spec.template and spec.jobTemplate: pod templates, which kstatus never reads.
//   - a CustomResourceDefinition's spec.versions: its schemas; kstatus reads its
//     conditions.
//   - the data of ConfigMaps and Secrets (data, stringData, binaryData): kstatus
//     reads nothing of them ("always ready" once they exist), and a Secret's
//     values must never be held where they could leak.
//
// trim is idempotent.
func trim(u *unstructured.Unstructured) *unstructured.Unstructured {
	// An object without managed fields is one trim trimmed already (an
	// Object's Unstructured, say), or one whose managed fields someone
	// stripped: its fingerprint stays as it is. Otherwise only trim's own
	// fingerprint is kept: a custom resource that keeps unknown fields could
	// carry the key itself.
	if _, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "metadata", "managedFields"); ok {
		delete(u.Object, appliedFieldsKey)
		if fp := AppliedFields(u); fp != "" {
			u.Object[appliedFieldsKey] = fp
		}
		u.SetManagedFields(nil)
	}
	if a := u.GetAnnotations(); a != nil {
		if _, ok := a[lastApplied]; ok {
			delete(a, lastApplied)
			u.SetAnnotations(a)
		}
	}
	unstructured.RemoveNestedField(u.Object, "spec", "template")
	unstructured.RemoveNestedField(u.Object, "spec", "jobTemplate")
	gvk := u.GroupVersionKind()
	switch {
	case gvk.Group == "" && (gvk.Kind == "Secret" || gvk.Kind == "ConfigMap"):
		delete(u.Object, "data")
		delete(u.Object, "stringData")
		delete(u.Object, "binaryData")
	case gvk.Group == "apiextensions.k8s.io" && gvk.Kind == "CustomResourceDefinition":
		unstructured.RemoveNestedField(u.Object, "spec", "versions")
	}
	return u
}

// AppliedFields returns the fingerprint of the fields Meridian's own server-side
// apply owns in u, an object as the API server returned it: a hash of the
// fieldsV1 of its managed fields entry of manager FieldManager, operation Apply,
// on the object itself (no subresource); "" when it has none.
//
// The API server moves a field out of that entry when another writer changes it
// (an update, a patch, the scale subresource, another manager's forced apply) and
// drops it when the field is removed, so an entry equal to the one Meridian's
// apply left means nothing Meridian applied was changed since. The hash does not
// depend on how the API server orders the entry: fieldsV1 is decoded into maps and
// encoded again with encoding/json, which writes map keys sorted. (The API server
// writes it deterministically too, in structured-merge-diff's sorted path order,
// and each list item's key, as k:{...}, with its fields sorted; the hash relies
// only on the latter, and both sides read the API server's key strings.) fieldsV1 names
// fields and the keys of list items, never a Secret's values; and only its hash
// is kept.
func AppliedFields(u *unstructured.Unstructured) string {
	v, _, _ := unstructured.NestedFieldNoCopy(u.Object, "metadata", "managedFields")
	entries, _ := v.([]any)
	for _, e := range entries {
		m, ok := e.(map[string]any)
		if !ok || m["manager"] != FieldManager || m["operation"] != "Apply" {
			continue
		}
		if sub, _ := m["subresource"].(string); sub != "" {
			continue
		}
		fields, ok := m["fieldsV1"]
		if !ok {
			return ""
		}
		data, err := json.Marshal(fields)
		if err != nil {
			return ""
		}
		sum := sha256.Sum256(data)
		return hex.EncodeToString(sum[:])
	}
	return ""
}

// WatchedFields returns the AppliedFields Trim kept of the object it trimmed into
// u (a watch's copy, as Object.Unstructured decodes it), "" when it had none.
func WatchedFields(u *unstructured.Unstructured) string {
	fp, _ := u.Object[appliedFieldsKey].(string)
	return fp
}
