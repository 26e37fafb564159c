package live

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// Object is how a watch holds an object: what Trim kept of it, encoded as JSON,
// beside the few fields read without decoding it. A decoded object is a tree of
// maps, about three times the size of its JSON on the heap; a region holds
// thousands of objects, and reads each at most a few times per pass.
//
// An Object is never changed once made, and shares nothing with its callers:
// Unstructured decodes a fresh copy on each call. It is the value the informers
// store (a runtime.Object whose metadata meta.Accessor reads through
// GetObjectMeta); Trim makes it, and Cache.Lookup returns it.
type Object struct {
	// name, namespace and resourceVersion are what the informer machinery reads
	// of every stored object: its key, and whether an update changed it.
	name, namespace, resourceVersion string
	// fields is the object's AppliedFields, as served.
	fields string
	// json is the trimmed object, without fields.
	json []byte
}

// compact returns the Object of u, an object trim trimmed: the fingerprint it
// kept (WatchedFields) is held apart from the rest. u is not changed.
func compact(u *unstructured.Unstructured) (*Object, error) {
	o := &Object{
		name:            u.GetName(),
		namespace:       u.GetNamespace(),
		resourceVersion: u.GetResourceVersion(),
		fields:          WatchedFields(u),
	}
	obj := u.Object
	if _, ok := obj[appliedFieldsKey]; ok {
		// A shallow copy without the key: the fingerprint is held once, in fields.
		obj = make(map[string]any, len(u.Object))
		for k, v := range u.Object {
			if k != appliedFieldsKey {
				obj[k] = v
			}
		}
	}
	data, err := (&unstructured.Unstructured{Object: obj}).MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("%s %s: encode the watched copy: %w", u.GetKind(), cache.NewObjectName(o.namespace, o.name), err)
	}
	o.json = data
	return o, nil
}

// Unstructured decodes o into a fresh object, the caller's to keep and change:
// the object as Trim trimmed it, its fingerprint included (WatchedFields reads
// it).
func (o *Object) Unstructured() (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(o.json); err != nil {
		return nil, fmt.Errorf("%s: decode the watched copy: %w", cache.NewObjectName(o.namespace, o.name), err)
	}
	if o.fields != "" {
		u.Object[appliedFieldsKey] = o.fields
	}
	return u, nil
}

// ResourceVersion is the object's metadata.resourceVersion.
func (o *Object) ResourceVersion() string { return o.resourceVersion }

// AppliedFields is the AppliedFields of the object as the API server served it,
// before Trim dropped its managed fields (what WatchedFields reads of
// Unstructured's copy); "" when it had none.
func (o *Object) AppliedFields() string { return o.fields }

// GetObjectKind implements runtime.Object. An Object does not hold its kind
// apart: its informer's kind is its kind, and Unstructured's copy has it.
func (o *Object) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object. An Object is never changed: the copy
// shares its JSON.
func (o *Object) DeepCopyObject() runtime.Object {
	c := *o
	return &c
}

// GetObjectMeta implements metav1.ObjectMetaAccessor, through which meta.Accessor
// reads an Object's metadata, as the informers do. The name, namespace and
// resourceVersion are read without decoding; any other field decodes o.
func (o *Object) GetObjectMeta() metav1.Object { return (*objectMeta)(o) }

// objectMeta is an Object seen as a metav1.Object, read-only: its setters
// panic, as an Object is shared by every reader of its watch and never changed.
type objectMeta Object

// decoded is the object the getters that are not held apart read: empty when it
// cannot be decoded (Unstructured's callers see why).
func (m *objectMeta) decoded() *unstructured.Unstructured {
	u, err := (*Object)(m).Unstructured()
	if err != nil {
		return &unstructured.Unstructured{Object: map[string]any{}}
	}
	return u
}

func readOnly() { panic("live: a watched Object is read-only") }

func (m *objectMeta) GetNamespace() string       { return m.namespace }
func (m *objectMeta) GetName() string            { return m.name }
func (m *objectMeta) GetResourceVersion() string { return m.resourceVersion }
func (m *objectMeta) GetGenerateName() string    { return m.decoded().GetGenerateName() }
func (m *objectMeta) GetUID() types.UID          { return m.decoded().GetUID() }
func (m *objectMeta) GetGeneration() int64       { return m.decoded().GetGeneration() }
func (m *objectMeta) GetSelfLink() string        { return m.decoded().GetSelfLink() }
func (m *objectMeta) GetCreationTimestamp() metav1.Time {
	return m.decoded().GetCreationTimestamp()
}
func (m *objectMeta) GetDeletionTimestamp() *metav1.Time {
	return m.decoded().GetDeletionTimestamp()
}
func (m *objectMeta) GetDeletionGracePeriodSeconds() *int64 {
	return m.decoded().GetDeletionGracePeriodSeconds()
}
func (m *objectMeta) GetLabels() map[string]string      { return m.decoded().GetLabels() }
func (m *objectMeta) GetAnnotations() map[string]string { return m.decoded().GetAnnotations() }
func (m *objectMeta) GetFinalizers() []string           { return m.decoded().GetFinalizers() }
func (m *objectMeta) GetOwnerReferences() []metav1.OwnerReference {
	return m.decoded().GetOwnerReferences()
}
func (m *objectMeta) GetManagedFields() []metav1.ManagedFieldsEntry {
	return m.decoded().GetManagedFields()
}

func (m *objectMeta) SetNamespace(string)                        { readOnly() }
func (m *objectMeta) SetName(string)                             { readOnly() }
func (m *objectMeta) SetGenerateName(string)                     { readOnly() }
func (m *objectMeta) SetUID(types.UID)                           { readOnly() }
func (m *objectMeta) SetResourceVersion(string)                  { readOnly() }
func (m *objectMeta) SetGeneration(int64)                        { readOnly() }
func (m *objectMeta) SetSelfLink(string)                         { readOnly() }
func (m *objectMeta) SetCreationTimestamp(metav1.Time)           { readOnly() }
func (m *objectMeta) SetDeletionTimestamp(*metav1.Time)          { readOnly() }
func (m *objectMeta) SetDeletionGracePeriodSeconds(*int64)       { readOnly() }
func (m *objectMeta) SetLabels(map[string]string)                { readOnly() }
func (m *objectMeta) SetAnnotations(map[string]string)           { readOnly() }
func (m *objectMeta) SetFinalizers([]string)                     { readOnly() }
func (m *objectMeta) SetOwnerReferences([]metav1.OwnerReference) { readOnly() }
func (m *objectMeta) SetManagedFields([]metav1.ManagedFieldsEntry) {
	readOnly()
}

var (
	_ runtime.Object            = (*Object)(nil)
	_ metav1.ObjectMetaAccessor = (*Object)(nil)
	_ metav1.Object             = (*objectMeta)(nil)
)
