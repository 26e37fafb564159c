package fleet

import (
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReservedTenantNames renames a tenant of the valid fleet and checks that a name
// that is a namespace Kubernetes, Meridian, a region's ingress controller or the
// platform owns is refused at the tenant's metadata.name, and that names merely like
// them are not.
func TestReservedTenantNames(t *testing.T) {
	// billing runs in us-east-1 only; its name is on line 4.
	billing := func(name string) string {
		return "apiVersion: meridian.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: " + name + "\nspec:\n  regions: [us-east-1]\n  apps:\n    - name: web\n"
	}
	fleetFile := string(validFleet()[FleetFile].Data)
	// The entries are on lines 18 and 19 of fleet.yaml, the ingress namespace on line
	// 12 of eu-west-2's file.
	reserving := fleetFile + "  reservedNamespaces:\n    - istio-system\n    - openshift-*\n"
	privateIngress := string(validFleet()["regions/eu-west-2.yaml"].Data) + "  ingressNamespace: ingress-private\n"

	refused := func(name, why string) []string {
		return []string{`tenants/billing.yaml:4: metadata.name: tenant name "` + name + `" is reserved: ` + why +
			`, and a tenant's name is its namespace in every region; choose another name (rename the file's metadata.name)`}
	}
	const kubernetes = "the namespace is owned by Kubernetes"

	tests := []struct {
		name   string
		tenant string            // billing's new name
		change map[string]string // other files changed, as in TestLoadErrors
		want   []string
	}{
		{name: "default", tenant: "default", want: refused("default", kubernetes)},
		{name: "kube-system", tenant: "kube-system", want: refused("kube-system", kubernetes)},
		{name: "kube-public", tenant: "kube-public", want: refused("kube-public", kubernetes)},
		{name: "kube-node-lease", tenant: "kube-node-lease", want: refused("kube-node-lease", kubernetes)},
		{name: "any kube- name", tenant: "kube-trucking", want: refused("kube-trucking", kubernetes)},
		{name: "Meridian's namespace", tenant: SystemNamespace, want: refused("meridian-system", "it is Meridian's own namespace, where it keeps its inventories")},
		{
			name:   "the default ingress namespace, of every region that sets none",
			tenant: "ingress-nginx",
			want:   refused("ingress-nginx", "it is the ingress controller's namespace in regions/eu-west-2.yaml (by default) and regions/us-east-1.yaml (by default)"),
		},
		{
			name:   "a region's own ingress namespace, where the tenant does not run",
			tenant: "ingress-private",
			change: map[string]string{"regions/eu-west-2.yaml": privateIngress},
			want:   refused("ingress-private", "it is the ingress controller's namespace in regions/eu-west-2.yaml:12"),
		},
		{
			name:   "the default ingress namespace, of the region that sets none",
			tenant: "ingress-nginx",
			change: map[string]string{"regions/eu-west-2.yaml": privateIngress},
			want:   refused("ingress-nginx", "it is the ingress controller's namespace in regions/us-east-1.yaml (by default)"),
		},
		{
			name:   "a reserved namespace",
			tenant: "istio-system",
			change: map[string]string{FleetFile: reserving},
			want:   refused("istio-system", `the platform owns the namespace (fleet.yaml:18 reserves "istio-system")`),
		},
		{
			name:   "a reserved prefix",
			tenant: "openshift-monitoring",
			change: map[string]string{FleetFile: reserving},
			want:   refused("openshift-monitoring", `the platform owns the namespace (fleet.yaml:19 reserves "openshift-*")`),
		},
		{
			name:   "invalid reserved namespaces are refused, and reserve nothing",
			tenant: "billing",
			change: map[string]string{FleetFile: fleetFile + "  reservedNamespaces:\n    - \"*\"\n    - Istio-*\n    - istio-*-x\n    - -istio*\n    - istio_system\n    - istio-*\n    - istio-*\n"},
			want: []string{
				`fleet.yaml:18: spec.reservedNamespaces[0]: "*" is neither a namespace name (a DNS-1123 label such as istio-system) nor a prefix of one ending in * (such as istio-*); write one of those`,
				`fleet.yaml:19: spec.reservedNamespaces[1]: "Istio-*" is neither a namespace name (a DNS-1123 label such as istio-system) nor a prefix of one ending in * (such as istio-*); write one of those`,
				`fleet.yaml:20: spec.reservedNamespaces[2]: "istio-*-x" is neither a namespace name (a DNS-1123 label such as istio-system) nor a prefix of one ending in * (such as istio-*); write one of those`,
				`fleet.yaml:21: spec.reservedNamespaces[3]: "-istio*" is neither a namespace name (a DNS-1123 label such as istio-system) nor a prefix of one ending in * (such as istio-*); write one of those`,
				`fleet.yaml:22: spec.reservedNamespaces[4]: "istio_system" is neither a namespace name (a DNS-1123 label such as istio-system) nor a prefix of one ending in * (such as istio-*); write one of those`,
				`fleet.yaml:24: spec.reservedNamespaces[6]: "istio-*" is listed twice (also at spec.reservedNamespaces[5]); remove one`,
			},
		},
		{name: "a name that only starts like Kubernetes' namespaces", tenant: "kubernetes-team"},
		{name: "kube alone", tenant: "kube"},
		{name: "a name that only starts like default", tenant: "defaults"},
		{name: "a name that is neither a reserved name nor behind a reserved prefix", tenant: "openshift", change: map[string]string{FleetFile: reserving}},
		{name: "a region's ingress namespace is no prefix", tenant: "ingress-nginx-team"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			change := map[string]string{"tenants/billing.yaml": billing(tt.tenant)}
			maps.Copy(change, tt.change)
			fsys := withFiles(change)
			if tt.want == nil {
				if _, err := Load(fsys); err != nil {
					t.Errorf("Load refused tenant %q:\n%v", tt.tenant, err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, loadErrors(t, fsys, defaultLimits)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJoinPositions(t *testing.T) {
	tests := []struct {
		positions []string
		want      string
	}{
		{[]string{"a.yaml:1"}, "a.yaml:1"},
		{[]string{"a.yaml:1", "b.yaml"}, "a.yaml:1 and b.yaml"},
		{[]string{"a.yaml", "b.yaml", "c.yaml"}, "a.yaml, b.yaml and c.yaml"},
		{[]string{"a.yaml", "b.yaml", "c.yaml", "d.yaml", "e.yaml"}, "a.yaml, b.yaml, c.yaml and 2 other regions"},
	}
	for _, tt := range tests {
		if got := joinPositions(tt.positions); got != tt.want {
			t.Errorf("joinPositions(%q) = %q, want %q", tt.positions, got, tt.want)
		}
	}
}
