package live

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// lastApplied is kubectl's copy of the whole object it applied: as large as the
// object, and read by nothing Meridian does.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Trim is the informers' transform: it drops from an object what makes it large
// and no reader of the cache needs, before it is stored. Kept: metadata but its
// managed fields and kubectl's last-applied annotation (labels and annotations
// say which unit an object belongs to; generation and deletionTimestamp are read
// by kstatus), spec but the parts named below (kstatus reads replicas, update
// strategies, progress deadlines, parallelism, a Service's type), and status
// (what kstatus reads most). Dropped:
//   - metadata.managedFields: the largest part of most objects. Drift is checked
//     by a server-side dry run (apply.Applier.Drift), not from the cache.
//   - spec.template and spec.jobTemplate: pod templates, which kstatus never reads.
//   - a CustomResourceDefinition's spec.versions: its schemas; kstatus reads its
//     conditions.
//   - the data of ConfigMaps and Secrets (data, stringData, binaryData): kstatus
//     reads nothing of them ("always ready" once they exist), and a Secret's
//     values must never be held where they could leak.
func Trim(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	u.SetManagedFields(nil)
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
	return u, nil
}
