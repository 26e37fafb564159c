package render

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
)

func obj(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

func crd(group, kind, scope string) *unstructured.Unstructured {
	u := obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "x."+group)
	u.Object["spec"] = map[string]any{"group": group, "scope": scope, "names": map[string]any{"kind": kind}}
	return u
}

func TestConfineAddon(t *testing.T) {
	addon := &fleet.Addon{Spec: fleet.AddonSpec{Namespace: "ingress-nginx", Namespaces: []string{"kube-system"}}}
	tenants := func(name string) *fleet.Tenant {
		if name == "trucking" {
			return &fleet.Tenant{}
		}
		return nil
	}
	tests := []struct {
		name    string
		objects []*unstructured.Unstructured
		wantNS  []string // namespaces after confinement, when it succeeds
		wantErr string
	}{{
		name: "cluster-scoped objects and CRDs are what addons are for",
		objects: []*unstructured.Unstructured{
			crd("db.example.com", "Database", "Namespaced"), crd("db.example.com", "Engine", "Cluster"),
			obj("db.example.com/v1", "Engine", "", "postgres"), obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "ingress"),
			obj("v1", "Namespace", "", "ingress-nginx"),
		},
		wantNS: []string{"", "", "", "", ""},
	}, {
		name:    "a namespaced object without a namespace lands in the addon's",
		objects: []*unstructured.Unstructured{obj("apps/v1", "Deployment", "", "controller"), obj("v1", "ConfigMap", "kube-system", "x")},
		wantNS:  []string{"ingress-nginx", "kube-system"},
	}, {
		name:    "a namespace the addon does not name",
		objects: []*unstructured.Unstructured{obj("v1", "ConfigMap", "default", "x")},
		wantErr: `ConfigMap/default/x: the object is in namespace "default", which the addon does not name; add "default" to the addon's spec.namespaces, or leave the namespace out so that Meridian puts it in "ingress-nginx"`,
	}, {
		name:    "a tenant's namespace",
		objects: []*unstructured.Unstructured{obj("v1", "Namespace", "", "trucking")},
		wantErr: `Namespace/trucking: trucking is tenant trucking's namespace; an addon may not write it, rename the namespace`,
	}, {
		name:    "Meridian's namespace",
		objects: []*unstructured.Unstructured{obj("v1", "Namespace", "", "meridian-system")},
		wantErr: `Namespace/meridian-system: meridian-system is Meridian's own namespace; an addon may not write it`,
	}, {
		name:    "a Namespace object it does not name",
		objects: []*unstructured.Unstructured{obj("v1", "Namespace", "", "monitoring")},
		wantErr: `Namespace/monitoring: the addon writes namespace monitoring but does not name it; add it to the addon's spec.namespaces`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := confineAddon(tt.objects, addon, tenants)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Fatalf("error = %q, want %q", gotErr, tt.wantErr)
			}
			for i, ns := range tt.wantNS {
				if got := tt.objects[i].GetNamespace(); got != ns {
					t.Errorf("%s: namespace %q, want %q", ObjectRef(tt.objects[i]), got, ns)
				}
			}
		})
	}
}

func TestTenantRoleGrantsCustomResources(t *testing.T) {
	tn := &fleet.Tenant{Metadata: fleet.ObjectMeta{Name: "shop"}}
	if got := rulesOf(tn.Spec.CustomResources); len(got) != len(tenantRules) {
		t.Fatalf("a tenant without grants has %d rules, want the %d of every tenant", len(got), len(tenantRules))
	}
	tn.Spec.CustomResources = []fleet.CustomResourceGrant{{Group: "db.example.com", Resources: []string{"databases"}}}
	got := rulesOf(tn.Spec.CustomResources)
	last := got[len(got)-1]
	if len(got) != len(tenantRules)+1 || last.APIGroups[0] != "db.example.com" || last.Resources[0] != "databases" || last.Verbs[0] != "*" {
		t.Errorf("rules %+v: want the tenant's rules and every verb on db.example.com/databases", got)
	}
	if len(tenantRules[len(tenantRules)-1].APIGroups) > 0 && tenantRules[len(tenantRules)-1].APIGroups[0] == "db.example.com" {
		t.Error("a tenant's grant leaked into the rules every tenant gets")
	}
}
