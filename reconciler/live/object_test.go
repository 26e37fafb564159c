package live

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

// TestObject checks what a watch holds of an object: decoded, it is the object
// trim made of it, fingerprint included, and a fresh copy on each read; its
// resourceVersion and fingerprint read without decoding agree with it; and the
// informer's key functions read its name and namespace, also from a tombstone.
func TestObject(t *testing.T) {
	tests := []struct {
		name, doc, key string
		fingerprint    bool
	}{
		{name: "a Deployment", doc: deploymentAsServed, key: "trucking/portal", fingerprint: true},
		{name: "a Service", doc: serviceAsServed, key: "trucking/portal", fingerprint: true},
		{name: "a ConfigMap", doc: configMapAsServed, key: "trucking/portal-settings", fingerprint: true},
		{name: "a Secret", doc: secretAsServed, key: "trucking/portal-db", fingerprint: true},
		{
			name: "a cluster-scoped object Meridian never applied",
			doc:  "apiVersion: v1\nkind: Namespace\nmetadata: {name: trucking, resourceVersion: \"12\", managedFields: [{manager: kubectl, operation: Update}]}\n",
			key:  "trucking",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			served := parse(t, tt.doc)
			want := trim(served.DeepCopy())
			out, err := Trim(served.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			o := out.(*Object)
			got, err := o.Unstructured()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.Object, got.Object); diff != "" {
				t.Errorf("decoded (-trimmed +decoded):\n%s", diff)
			}
			if fp := AppliedFields(served); (fp != "") != tt.fingerprint || o.AppliedFields() != fp || WatchedFields(got) != fp {
				t.Errorf("fingerprint %q, decoded %q; want %q", o.AppliedFields(), WatchedFields(got), fp)
			}
			if rv := served.GetResourceVersion(); o.ResourceVersion() != rv {
				t.Errorf("resourceVersion %q, want %q", o.ResourceVersion(), rv)
			}

			// Each read is the caller's own.
			got.SetLabels(nil)
			unstructured.RemoveNestedField(got.Object, "status")
			again, err := o.Unstructured()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.Object, again.Object); diff != "" {
				t.Errorf("a read changed by its caller changed the next (-trimmed +next):\n%s", diff)
			}

			m, err := meta.Accessor(o)
			if err != nil {
				t.Fatal(err)
			}
			if m.GetName() != served.GetName() || m.GetNamespace() != served.GetNamespace() || m.GetResourceVersion() != served.GetResourceVersion() ||
				m.GetUID() != served.GetUID() || !cmp.Equal(m.GetLabels(), served.GetLabels()) {
				t.Errorf("metadata read through meta.Accessor: %s/%s at %q, uid %q, labels %v; want the served object's", m.GetNamespace(), m.GetName(), m.GetResourceVersion(), m.GetUID(), m.GetLabels())
			}
			for _, obj := range []any{o, cache.DeletedFinalStateUnknown{Key: tt.key, Obj: o}} {
				key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
				if err != nil || key != tt.key {
					t.Errorf("key of %T: %q, %v; want %q", obj, key, err, tt.key)
				}
			}
			if key, err := cache.MetaNamespaceKeyFunc(o); err != nil || key != tt.key {
				t.Errorf("MetaNamespaceKeyFunc: %q, %v; want %q", key, err, tt.key)
			}
			if c := o.DeepCopyObject().(*Object); c == o || !cmp.Equal(c.json, o.json) || c.fields != o.fields {
				t.Error("DeepCopyObject is not an equal copy")
			}
		})
	}
}

// TestTrimIdempotent checks that an object transformed twice is held as if
// transformed once: an Object is kept as it is, and an Object's decoded copy
// makes the same Object again.
func TestTrimIdempotent(t *testing.T) {
	for _, fx := range asServed {
		t.Run(fx.kind, func(t *testing.T) {
			out, err := Trim(parse(t, fx.doc))
			if err != nil {
				t.Fatal(err)
			}
			once := out.(*Object)
			if twice, err := Trim(once); err != nil || twice != once {
				t.Errorf("Trim of an Object = %p, %v; want the same %p", twice, err, once)
			}
			u, err := once.Unstructured()
			if err != nil {
				t.Fatal(err)
			}
			out, err = Trim(u)
			if err != nil {
				t.Fatal(err)
			}
			again := out.(*Object)
			if diff := cmp.Diff(once, again, cmp.AllowUnexported(Object{})); diff != "" {
				t.Errorf("the decoded copy trimmed again (-once +again):\n%s", diff)
			}
		})
	}
}

// TestObjectReadOnly checks that an Object's metadata cannot be changed through
// meta.Accessor: it is shared by every reader of its watch.
func TestObjectReadOnly(t *testing.T) {
	out, err := Trim(parse(t, configMapAsServed))
	if err != nil {
		t.Fatal(err)
	}
	m, err := meta.Accessor(out)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("SetName did not panic")
		}
		if m.GetName() != "portal-settings" {
			t.Errorf("name %q after SetName", m.GetName())
		}
	}()
	m.SetName("changed")
}
