package helm

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestHooks(t *testing.T) {
	obj := func(name string, annotations map[string]any) *unstructured.Unstructured {
		md := map[string]any{"name": name}
		if annotations != nil {
			md["annotations"] = annotations
		}
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": md}}
	}
	type hook struct {
		Name     string
		Events   []HookEvent
		Weight   int
		Policies []HookDeletePolicy
	}
	tests := []struct {
		name       string
		annotation map[string]any
		want       *hook // nil: not a hook
	}{
		{"no annotations", nil, nil},
		{"other annotations", map[string]any{"a": "b"}, nil},
		{"one event, default policy", map[string]any{"helm.sh/hook": "pre-install"},
			&hook{Events: []HookEvent{PreInstall}, Policies: []HookDeletePolicy{BeforeHookCreation}}},
		{"events as Helm reads them: trimmed, lower-cased, others left out",
			map[string]any{"helm.sh/hook": " Pre-Install, post-upgrade ,pre-delete,test"},
			&hook{Events: []HookEvent{PreInstall, PostUpgrade}, Policies: []HookDeletePolicy{BeforeHookCreation}}},
		{"weight and policies", map[string]any{"helm.sh/hook": "post-install", "helm.sh/hook-weight": "-5", "helm.sh/hook-delete-policy": "hook-succeeded, Hook-Failed"},
			&hook{Events: []HookEvent{PostInstall}, Weight: -5, Policies: []HookDeletePolicy{HookSucceeded, HookFailed}}},
		{"a weight that is not an integer is 0, as in Helm", map[string]any{"helm.sh/hook": "pre-upgrade", "helm.sh/hook-weight": "first"},
			&hook{Events: []HookEvent{PreUpgrade}, Policies: []HookDeletePolicy{BeforeHookCreation}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := obj("j", tt.annotation)
			rest, hooks := Hooks([]*unstructured.Unstructured{o})
			if tt.want == nil {
				if len(hooks) != 0 || len(rest) != 1 {
					t.Fatalf("got %d hooks and %d objects, want the object back", len(hooks), len(rest))
				}
				return
			}
			if len(hooks) != 1 || len(rest) != 0 {
				t.Fatalf("got %d hooks and %d objects, want one hook", len(hooks), len(rest))
			}
			h := hooks[0]
			got := &hook{Events: h.Events, Weight: h.Weight, Policies: h.DeletePolicies}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("hook (-want +got):\n%s", diff)
			}
			if h.Object != o {
				t.Error("the hook does not hold the object given")
			}
		})
	}
}

func TestPhaseOrdersByWeightThenName(t *testing.T) {
	hook := func(name string, weight int, events ...HookEvent) Hook {
		u := &unstructured.Unstructured{}
		u.SetName(name)
		return Hook{Object: u, Weight: weight, Events: events}
	}
	hooks := []Hook{
		hook("patch", 0, PostInstall, PostUpgrade),
		hook("create", 0, PreInstall, PreUpgrade),
		hook("rbac", -10, PreInstall, PostInstall),
		hook("b-secret", -1, PreInstall),
		hook("a-secret", -1, PreInstall),
		hook("migrate", 5, PreUpgrade),
	}
	names := func(hs []Hook) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.Object.GetName())
		}
		return out
	}
	for _, tt := range []struct {
		event HookEvent
		want  []string
	}{
		{PreInstall, []string{"rbac", "a-secret", "b-secret", "create"}},
		{PostInstall, []string{"rbac", "patch"}},
		{PreUpgrade, []string{"create", "migrate"}},
		{PostUpgrade, []string{"patch"}},
	} {
		if diff := cmp.Diff(tt.want, names(Phase(hooks, tt.event))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.event, diff)
		}
	}
}
