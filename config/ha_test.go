package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const haHead = "apiVersion: meridian.dev/v1alpha1\nkind: Config\nrepository:\n  url: https://x/y.git\n  branch: main\n"

func TestLoadHA(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "meridian-system")
	t.Setenv("POD_NAME", "meridian-6d5f7c9b8-x2x7k")
	c, err := Load(write(t, t.TempDir(), "meridian.yaml", haHead+"ha: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &HA{Namespace: "meridian-system", Name: "meridian", Identity: "meridian-6d5f7c9b8-x2x7k", LeaseDuration: Duration(15 * time.Second), Shards: 32}
	if diff := cmp.Diff(want, c.HA); diff != "" {
		t.Errorf("ha defaults (-want +got):\n%s", diff)
	}

	c, err = Load(write(t, t.TempDir(), "meridian.yaml", haHead+"ha:\n  kubeconfigContext: management\n  namespace: ops\n  identity: replica-a\n  leaseDuration: 6s\n  shards: 8\n"))
	if err != nil {
		t.Fatal(err)
	}
	want = &HA{KubeconfigContext: "management", Namespace: "ops", Name: "meridian", Identity: "replica-a", LeaseDuration: Duration(6 * time.Second), Shards: 8}
	if diff := cmp.Diff(want, c.HA); diff != "" {
		t.Errorf("ha (-want +got):\n%s", diff)
	}

	// Several replicas keep Route53 records: one of them writes at a time.
	c, err = Load(write(t, t.TempDir(), "meridian.yaml", haHead+"route53: {}\nha:\n  namespace: ops\n"))
	if err != nil || c.HA == nil || c.Route53 == nil {
		t.Errorf("ha with route53: %+v %+v, %v; want both", c.HA, c.Route53, err)
	}

	c, err = Load(write(t, t.TempDir(), "meridian.yaml", haHead))
	if err != nil || c.HA != nil {
		t.Errorf("without ha: %+v, %v; want single-replica mode", c.HA, err)
	}
}

func TestLoadHAErrors(t *testing.T) {
	t.Setenv("POD_NAME", "meridian-0")
	tests := []struct{ name, namespace, content, want string }{
		{"no namespace", "", "ha: {}\n", "ha.namespace: not set and POD_NAMESPACE is empty"},
		{"identity not a name", "ops", "ha:\n  identity: Replica_A\n", `ha.identity "Replica_A": with ha.name "meridian" it must make a Lease name`},
		{"lease too short", "ops", "ha:\n  leaseDuration: 1s\n", "ha.leaseDuration: 1s is too short"},
		{"too many shards", "ops", "ha:\n  shards: 5000\n", "ha.shards: 5000 is out of range"},
		{"unknown field", "ops", "ha:\n  leaseDurration: 5s\n", `ha.leaseDurration: unknown field; did you mean "leaseDuration"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("POD_NAMESPACE", tt.namespace)
			_, err := Load(write(t, t.TempDir(), "meridian.yaml", haHead+tt.content))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
