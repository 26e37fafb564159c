package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
)

func obj(kind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func ref(kind, ns, name string) ObjectRef {
	return ObjectRef{Version: "v1", Kind: kind, Namespace: ns, Name: name}
}

// unit reads a unit's text form; tests name units the way people read them.
func unit(s string) fleet.UnitID {
	u, err := fleet.ParseUnitID(s)
	if err != nil {
		panic(err)
	}
	return u
}

func units(ss ...string) []fleet.UnitID {
	var out []fleet.UnitID
	for _, s := range ss {
		out = append(out, unit(s))
	}
	return out
}

func desired(id, digest string, objs ...*unstructured.Unstructured) Desired {
	return Desired{Unit: unit(id), Digest: digest, Objects: objs}
}

func applied(id, digest string, refs ...ObjectRef) Inventory {
	return Inventory{Unit: unit(id), Digest: digest, Objects: refs}
}

// summary is what the tests compare: unit → action and deleted objects.
type summary struct {
	Unit   string
	Action string
	Delete []string
}

func summarize(cs ChangeSet) []summary {
	var out []summary
	for _, c := range cs.Changes {
		s := summary{Unit: c.Unit.String(), Action: c.Action.String()}
		for _, d := range c.Delete {
			s.Delete = append(s.Delete, d.String())
		}
		out = append(out, s)
	}
	return out
}

func TestCalculate(t *testing.T) {
	web := obj("Service", "t1", "web")
	cm := obj("ConfigMap", "t1", "web")
	tests := []struct {
		name     string
		desired  []Desired
		applied  []Inventory
		failed   []string
		limits   Limits
		want     []summary
		wantHeld string
	}{{
		name:    "new unit is created",
		desired: []Desired{desired("t1/r/web", "d1", web)},
		want:    []summary{{Unit: "t1/r/web", Action: "create"}},
	}, {
		name:    "same digest is unchanged",
		desired: []Desired{desired("t1/r/web", "d1", web)},
		applied: []Inventory{applied("t1/r/web", "d1", ref("Service", "t1", "web"))},
		want:    []summary{{Unit: "t1/r/web", Action: "unchanged"}},
	}, {
		name:    "an object no longer rendered is deleted with the update",
		desired: []Desired{desired("t1/r/web", "d2", web)},
		applied: []Inventory{applied("t1/r/web", "d1", ref("Service", "t1", "web"), ref("ConfigMap", "t1", "web"))},
		limits:  Limits{MaxDeletePercent: 50},
		want:    []summary{{Unit: "t1/r/web", Action: "update", Delete: []string{"ConfigMap/t1/web"}}},
	}, {
		name:    "objects left from an interrupted prune leave even when the digest is unchanged",
		desired: []Desired{desired("t1/r/web", "d2", web)},
		applied: []Inventory{applied("t1/r/web", "d2", ref("Service", "t1", "web"), ref("ConfigMap", "t1", "old"))},
		limits:  Limits{MaxDeletePercent: 50},
		want:    []summary{{Unit: "t1/r/web", Action: "unchanged", Delete: []string{"ConfigMap/t1/old"}}},
	}, {
		name:    "a unit that left the fleet is pruned",
		desired: []Desired{desired("t1/r/web", "d1", web, cm)},
		applied: []Inventory{
			applied("t1/r/web", "d1", ref("Service", "t1", "web"), ref("ConfigMap", "t1", "web")),
			applied("t1/r/api", "d1", ref("Service", "t1", "api")),
		},
		limits: Limits{MaxDeletePercent: 50},
		want: []summary{
			{Unit: "t1/r/api", Action: "prune", Delete: []string{"Service/t1/api"}},
			{Unit: "t1/r/web", Action: "unchanged"},
		},
	}, {
		name:    "a unit that failed to render is kept, never pruned",
		desired: []Desired{},
		applied: []Inventory{applied("t1/r/web", "d1", ref("Service", "t1", "web"))},
		failed:  []string{"t1/r/web"},
		limits:  Limits{MaxDeletePercent: 100},
		want:    []summary{{Unit: "t1/r/web", Action: "keep"}},
	}, {
		name:     "nothing is deleted after an upstream failure",
		applied:  []Inventory{applied("t1/r/api", "d1", ref("Service", "t1", "api"))},
		limits:   Limits{MaxDeletePercent: 100, NoPrune: true},
		want:     []summary{{Unit: "t1/r/api", Action: "prune", Delete: []string{"Service/t1/api"}}},
		wantHeld: "an earlier step failed, and nothing is deleted because something failed",
	}, {
		name:    "deleting more than the limit is held",
		desired: []Desired{desired("t1/r/web", "d1", web)},
		applied: []Inventory{
			applied("t1/r/web", "d1", ref("Service", "t1", "web")),
			applied("t1/r/api", "d1", ref("Service", "t1", "api"), ref("ConfigMap", "t1", "api")),
		},
		limits:   Limits{MaxDeletePercent: 30},
		want:     []summary{{Unit: "t1/r/api", Action: "prune", Delete: []string{"Service/t1/api", "ConfigMap/t1/api"}}, {Unit: "t1/r/web", Action: "unchanged"}},
		wantHeld: "the revision deletes 2 of 3 objects (66%), more than the limit of 30%; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\"",
	}, {
		name:    "deleting exactly the limit proceeds",
		desired: []Desired{desired("t1/r/web", "d1", web)},
		applied: []Inventory{
			applied("t1/r/web", "d1", ref("Service", "t1", "web")),
			applied("t1/r/api", "d1", ref("Service", "t1", "api")),
		},
		limits: Limits{MaxDeletePercent: 50},
		want:   []summary{{Unit: "t1/r/api", Action: "prune", Delete: []string{"Service/t1/api"}}, {Unit: "t1/r/web", Action: "unchanged"}},
	}, {
		name:     "deleting a tenant namespace is held whatever the share",
		desired:  []Desired{desired("t2/r", "d1", obj("Namespace", "", "t2"))},
		applied:  []Inventory{applied("t1/r", "d1", ref("Namespace", "", "t1")), applied("t2/r", "d1", ref("Namespace", "", "t2"))},
		limits:   Limits{MaxDeletePercent: 100},
		want:     []summary{{Unit: "t1/r", Action: "prune", Delete: []string{"Namespace/t1"}}, {Unit: "t2/r", Action: "unchanged"}},
		wantHeld: "the revision deletes tenant namespace t1/r; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\"",
	}, {
		name:     "an addon deleting a namespace is held whatever the share",
		desired:  []Desired{desired("t2/r", "d1", obj("Namespace", "", "t2"))},
		applied:  []Inventory{applied("addon:r/ingress", "d1", ref("Namespace", "", "ingress-nginx")), applied("t2/r", "d1", ref("Namespace", "", "t2"))},
		limits:   Limits{MaxDeletePercent: 100},
		want:     []summary{{Unit: "addon:r/ingress", Action: "prune", Delete: []string{"Namespace/ingress-nginx"}}, {Unit: "t2/r", Action: "unchanged"}},
		wantHeld: "the revision deletes a namespace of addon addon:r/ingress, and everything in it" + allowIt,
	}, {
		name:    "an addon deleting a CRD is held whatever the share",
		desired: []Desired{desired("addon:r/db", "d2", obj("ConfigMap", "db", "settings"))},
		applied: []Inventory{applied("addon:r/db", "d1", ref("ConfigMap", "db", "settings"),
			ObjectRef{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: "databases.db.example.com"})},
		limits:   Limits{MaxDeletePercent: 100},
		want:     []summary{{Unit: "addon:r/db", Action: "update", Delete: []string{"CustomResourceDefinition/databases.db.example.com"}}},
		wantHeld: "the revision deletes a CustomResourceDefinition of addon addon:r/db, and every custom resource of it in the region" + allowIt,
	}, {
		name:    "an explicit allowance lets a mass deletion through",
		applied: []Inventory{applied("t1/r", "d1", ref("Namespace", "", "t1"))},
		limits:  Limits{MaxDeletePercent: 10, AllowMassDeletion: true},
		want:    []summary{{Unit: "t1/r", Action: "prune", Delete: []string{"Namespace/t1"}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := Calculate("r", tt.desired, tt.applied, units(tt.failed...), tt.limits)
			if diff := cmp.Diff(tt.want, summarize(cs)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantHeld, cs.Held); diff != "" {
				t.Errorf("held (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChangeSetString(t *testing.T) {
	cs := Calculate("eu-west-2",
		[]Desired{desired("t1/r/web", "d2", obj("Service", "t1", "web")), desired("t1/r/new", "d1")},
		[]Inventory{applied("t1/r/web", "d1", ref("Service", "t1", "web")), applied("t1/r/old", "d1", ref("Service", "t1", "old"))},
		nil, Limits{MaxDeletePercent: 10})
	want := "eu-west-2: 1 create, 1 update, 1 prune; 1 objects to delete; deletions held: the revision deletes 1 of 2 objects (50%), more than the limit of 10%; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\""
	if got := cs.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if cs.Empty() {
		t.Error("Empty() = true for a change set with changes")
	}
	if !Calculate("r", nil, nil, nil, Limits{}).Empty() {
		t.Error("Empty() = false for nothing to do")
	}
}
