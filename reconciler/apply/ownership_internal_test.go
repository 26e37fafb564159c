package apply

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/reconciler/plan"
)

// TestDescribeSortsManagers checks that a refusal names an object's field
// managers in one order whatever order the API server keeps them in: a
// controller's status update may come before or after the creator's entry.
func TestDescribeSortsManagers(t *testing.T) {
	for _, order := range [][]string{
		{"ops-team", "kube-controller-manager", "ops-team"},
		{"kube-controller-manager", "ops-team"},
	} {
		live := &unstructured.Unstructured{Object: map[string]any{}}
		var fields []metav1.ManagedFieldsEntry
		for _, m := range order {
			fields = append(fields, metav1.ManagedFieldsEntry{Manager: m})
		}
		live.SetManagedFields(fields)
		got := describe(plan.ObjectRef{}, live).Managers
		if want := []string{"kube-controller-manager", "ops-team"}; !cmp.Equal(got, want) {
			t.Errorf("managers in order %v: got %v, want %v", order, got, want)
		}
	}
}
