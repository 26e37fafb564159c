package inventory

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
)

// TestDecodeAllDecodesOnlyWhatChanged lists the same ConfigMaps twice: the
// second List decodes only the one whose resourceVersion moved (the others'
// data, tampered with here at the same resourceVersion, is not read again), a
// new resourceVersion that is corrupt is still refused, and what a caller
// appends to a returned inventory does not reach the next List.
func TestDecodeAllDecodesOnlyWhatChanged(t *testing.T) {
	inv := func(tenant, digest string) plan.Inventory {
		return plan.Inventory{Unit: fleet.UnitID{Tenant: tenant, Region: "us-east-1", App: "portal"}, Digest: digest, Revision: "r1",
			Objects: []plan.ObjectRef{{Version: "v1", Kind: "Service", Namespace: tenant, Name: "portal"}}}
	}
	cm := func(i plan.Inventory, rv string) *corev1.ConfigMap {
		data, err := encode(i)
		if err != nil {
			t.Fatal(err)
		}
		return &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: Name(i.Unit), Namespace: Namespace, ResourceVersion: rv, Labels: map[string]string{LabelInventory: FormatV1}},
			Data:       map[string]string{DataKey: data},
		}
	}
	a, b := inv("a", "d1"), inv("b", "d1")
	s := &Store{}
	got, err := s.decodeAll([]*corev1.ConfigMap{cm(a, "10"), cm(b, "11")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]plan.Inventory{a, b}, got); diff != "" {
		t.Fatalf("first list (-want +got):\n%s", diff)
	}
	got[0].Objects = append(got[0].Objects, plan.ObjectRef{Version: "v1", Kind: "Secret", Namespace: "a", Name: "x"})

	tampered := cm(inv("a", "tampered"), "10") // same resourceVersion: not decoded again
	b2 := inv("b", "d2")
	got, err = s.decodeAll([]*corev1.ConfigMap{tampered, cm(b2, "12")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]plan.Inventory{a, b2}, got); diff != "" {
		t.Errorf("second list (-want +got):\n%s", diff)
	}

	corrupt := cm(b2, "13")
	corrupt.Data[DataKey] = "{"
	if _, err := s.decodeAll([]*corev1.ConfigMap{tampered, corrupt}); err == nil || !strings.Contains(err.Error(), "corrupt inventory") {
		t.Errorf("corrupt at a new resourceVersion: error = %v, want it refused", err)
	}
}
