package inventory

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler/plan"
)

func TestName(t *testing.T) {
	tests := []struct {
		name string
		unit fleet.UnitID
		want string
	}{
		{"a placement reads as its ID", fleet.UnitID{Tenant: "trucking", Region: "us-east-1", App: "portal"}, "inventory.trucking.us-east-1.portal-"},
		{"a namespace unit reads as its ID", fleet.NamespaceUnit("trucking", "us-east-1"), "inventory.trucking.us-east-1-"},
		{"capitals are lowered and other characters become dashes", fleet.UnitID{Tenant: "Big_Co", Region: "eu west", App: "app"}, "inventory.big-co.eu-west.app-"},
		{"labels never start or end with a dash", fleet.UnitID{Tenant: "-a-", Region: "_b_", App: "c"}, "inventory.a.b.c-"},
		{"nothing readable leaves only the hash", fleet.UnitID{Tenant: "/", Region: "/", App: "_"}, "inventory-"},
		{"a long ID is shortened", fleet.UnitID{Tenant: strings.Repeat("t", 300), Region: "r", App: "a"}, "inventory." + strings.Repeat("t", 200) + "-"},
	}
	seen := map[string]fleet.UnitID{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Name(tt.unit)
			if !strings.HasPrefix(got, tt.want) || len(got) != len(tt.want)+12 {
				t.Errorf("Name(%s) = %q, want %q followed by 12 hex digits", tt.unit, got, tt.want)
			}
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Errorf("Name(%s) = %q is not a valid object name: %v", tt.unit, got, errs)
			}
			if Name(tt.unit) != got {
				t.Errorf("Name(%s) is not deterministic", tt.unit)
			}
			if other, ok := seen[got]; ok {
				t.Errorf("Name(%s) = Name(%s)", tt.unit, other)
			}
			seen[got] = tt.unit
		})
	}
	if a, b := Name(fleet.NamespaceUnit("a", "b")), Name(fleet.NamespaceUnit("a.b", "")); a == b {
		t.Errorf("IDs that read alike share the name %s", a)
	}
}

func refs(names ...string) []plan.ObjectRef {
	var out []plan.ObjectRef
	for _, n := range names {
		out = append(out, plan.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "t1", Name: n})
	}
	return out
}

func newStore(t *testing.T, cfg *rest.Config) *Store {
	t.Helper()
	s, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func list(t *testing.T, s *Store) []plan.Inventory {
	t.Helper()
	got, err := s.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestStore runs against a real kube-apiserver: inventories are ConfigMaps there.
func TestStore(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1})
	cfg := tb.Regions[0].Config
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := t.Context()

	web := plan.Inventory{Unit: unit("t1/us-east-1/web"), Digest: "sha256:1", Revision: "rev1", Objects: refs("a", "b")}
	ns := plan.Inventory{Unit: unit("t1/us-east-1"), Digest: "sha256:2", Revision: "rev1",
		Objects: []plan.ObjectRef{{Version: "v1", Kind: "Namespace", Name: "t1"}, {Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role", Namespace: "t1", Name: "meridian-tenant"}}}

	t.Run("an empty region lists no inventories", func(t *testing.T) {
		if got := list(t, newStore(t, cfg)); len(got) != 0 {
			t.Errorf("List = %v, want none", got)
		}
		if _, err := cs.CoreV1().Namespaces().Get(ctx, Namespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s exists before any write (err %v)", Namespace, err)
		}
	})

	t.Run("inventories put are listed by a new store, as after a restart", func(t *testing.T) {
		s := newStore(t, cfg)
		for _, inv := range []plan.Inventory{web, ns} {
			if err := s.Put(ctx, inv); err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff([]plan.Inventory{ns, web}, list(t, newStore(t, cfg))); diff != "" {
			t.Errorf("List after restart (-want +got):\n%s", diff)
		}
	})

	t.Run("one labelled ConfigMap per unit holds its JSON", func(t *testing.T) {
		cm, err := cs.CoreV1().ConfigMaps(Namespace).Get(ctx, Name(web.Unit), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := `{"unit":"t1/us-east-1/web","digest":"sha256:1","revision":"rev1","objects":[` +
			`{"version":"v1","kind":"ConfigMap","namespace":"t1","name":"a"},{"version":"v1","kind":"ConfigMap","namespace":"t1","name":"b"}]}`
		if diff := cmp.Diff(map[string]string{DataKey: want}, cm.Data); diff != "" {
			t.Errorf("data (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"app.kubernetes.io/managed-by": "meridian", LabelInventory: FormatV1}, cm.Labels); diff != "" {
			t.Errorf("labels (-want +got):\n%s", diff)
		}
		all, err := cs.CoreV1().ConfigMaps(Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelInventory})
		if err != nil {
			t.Fatal(err)
		}
		if len(all.Items) != 2 {
			t.Errorf("%d inventory ConfigMaps, want one per unit (2)", len(all.Items))
		}
	})

	t.Run("a put replaces the unit's inventory", func(t *testing.T) {
		s := newStore(t, cfg)
		list(t, s)
		next := web
		next.Digest, next.Objects = "sha256:3", refs("a")
		if err := s.Put(ctx, next); err != nil {
			t.Fatal(err)
		}
		next.Objects = refs("a", "c") // a second write from the version the first one returned
		if err := s.Put(ctx, next); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]plan.Inventory{ns, next}, list(t, newStore(t, cfg))); diff != "" {
			t.Errorf("List (-want +got):\n%s", diff)
		}
		web = next
	})

	t.Run("get reads one unit's inventory, and nil when it has none", func(t *testing.T) {
		s := newStore(t, cfg)
		got, err := s.Get(ctx, web.Unit)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&web, got); diff != "" {
			t.Errorf("Get (-want +got):\n%s", diff)
		}
		if got, err := s.Get(ctx, unit("t1/us-east-1/none")); got != nil || err != nil {
			t.Errorf("Get of a unit without inventory = %v, %v; want nil, nil", got, err)
		}
		// A Put writes against the version Get read.
		other := web
		other.Revision = "rev-other"
		if err := newStore(t, cfg).Put(ctx, other); err != nil {
			t.Fatal(err)
		}
		err = s.Put(ctx, web)
		if !apierrors.IsConflict(errors.Unwrap(err)) {
			t.Errorf("Put after another writer changed the entry read by Get: %v; want a conflict", err)
		}
	})

	t.Run("a write over an entry changed since it was read is a conflict", func(t *testing.T) {
		a, b := newStore(t, cfg), newStore(t, cfg)
		list(t, a)
		list(t, b)
		fromB := web
		fromB.Digest = "sha256:from-b"
		if err := b.Put(ctx, fromB); err != nil {
			t.Fatal(err)
		}
		fromA := web
		fromA.Digest = "sha256:from-a"
		err := a.Put(ctx, fromA)
		want := "ConfigMap/meridian-system/" + Name(web.Unit) + ": inventory of t1/us-east-1/web changed in the cluster since Meridian read it (another writer?); " +
			`list the inventories again and retry: Operation cannot be fulfilled on configmaps "` + Name(web.Unit) + `": the object has been modified; please apply your changes to the latest version and try again`
		if diff := cmp.Diff(want, errString(err)); diff != "" {
			t.Errorf("Put over a changed entry (-want +got):\n%s", diff)
		}
		// A unit a List did not return is known to be absent: creating it conflicts
		// when another writer created it meanwhile.
		fresh := plan.Inventory{Unit: unit("t2/us-east-1/api"), Objects: refs("x")}
		if err := b.Put(ctx, fresh); err != nil {
			t.Fatal(err)
		}
		err = a.Put(ctx, fresh)
		want = "ConfigMap/meridian-system/" + Name(fresh.Unit) + ": inventory of t2/us-east-1/api changed in the cluster since Meridian read it (another writer?); " +
			`list the inventories again and retry: configmaps "` + Name(fresh.Unit) + `" already exists`
		if diff := cmp.Diff(want, errString(err)); diff != "" {
			t.Errorf("Put of a unit created meanwhile (-want +got):\n%s", diff)
		}
		// After a failed write the store reads the entry again and the retry succeeds.
		if err := a.Put(ctx, fromA); err != nil {
			t.Errorf("retry after a conflict: %v", err)
		}
		if err := a.Delete(ctx, fresh.Unit); err != nil {
			t.Fatal(err)
		}
		web = fromA
	})

	t.Run("delete removes the inventory, and deleting a missing one succeeds", func(t *testing.T) {
		s := newStore(t, cfg)
		gone := plan.Inventory{Unit: unit("t3/us-east-1/gone"), Objects: refs("x")}
		if err := s.Put(ctx, gone); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, gone.Unit); err != nil {
			t.Fatal(err)
		}
		if err := newStore(t, cfg).Delete(ctx, gone.Unit); err != nil {
			t.Errorf("deleting a missing inventory: %v", err)
		}
		if diff := cmp.Diff([]plan.Inventory{ns, web}, list(t, s)); diff != "" {
			t.Errorf("List after Delete (-want +got):\n%s", diff)
		}
	})

	t.Run("a corrupt entry is an error naming it, never dropped", func(t *testing.T) {
		tests := []struct {
			name   string
			cmName string
			labels map[string]string
			data   map[string]string
			want   string
		}{{
			name:   "not JSON",
			cmName: Name(unit("t9/r/a")),
			data:   map[string]string{DataKey: "{not json"},
			want:   "inventory.json is not an inventory: invalid character 'n' looking for beginning of object key string",
		}, {
			name:   "unknown field",
			cmName: Name(unit("t9/r/a")),
			data:   map[string]string{DataKey: `{"unit":"t9/r/a","objects":[],"extra":1}`},
			want:   `inventory.json is not an inventory: json: unknown field "extra"`,
		}, {
			name:   "no data key",
			cmName: Name(unit("t9/r/a")),
			want:   "no data key inventory.json",
		}, {
			name:   "another unit's inventory under this name",
			cmName: Name(unit("t9/r/a")),
			data:   map[string]string{DataKey: `{"unit":"t9/r/b","digest":"","revision":"","objects":[]}`},
			want:   `it records unit t9/r/b, whose inventory is named ` + Name(unit("t9/r/b")),
		}, {
			name:   "an object without a kind",
			cmName: Name(unit("t9/r/a")),
			data:   map[string]string{DataKey: `{"unit":"t9/r/a","digest":"","revision":"","objects":[{"version":"v1","name":"x"}]}`},
			want:   "objects[0] lacks a version, kind or name",
		}}
		const fix = "repair or delete it (deleting it makes Meridian forget the objects it applied for that unit, which are then never pruned)"
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				cm := &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: tt.cmName, Namespace: Namespace, Labels: map[string]string{LabelInventory: FormatV1}},
					Data:       tt.data,
				}
				if _, err := cs.CoreV1().ConfigMaps(Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := cs.CoreV1().ConfigMaps(Namespace).Delete(context.WithoutCancel(ctx), tt.cmName, metav1.DeleteOptions{}); err != nil {
						t.Error(err)
					}
				}()
				got, err := newStore(t, cfg).List(ctx)
				prefix := "ConfigMap/meridian-system/" + tt.cmName + ": corrupt inventory: "
				if diff := cmp.Diff(prefix+tt.want+"; "+fix, errString(err)); diff != "" {
					t.Errorf("List error (-want +got):\n%s", diff)
				}
				if got != nil {
					t.Errorf("List returned %v with the error; want nothing", got)
				}
			})
		}
	})

	t.Run("an entry of another format version is refused", func(t *testing.T) {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: Name(unit("t9/r/v2")), Namespace: Namespace, Labels: map[string]string{LabelInventory: "v2"}},
			Data:       map[string]string{DataKey: `{}`},
		}
		if _, err := cs.CoreV1().ConfigMaps(Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer cs.CoreV1().ConfigMaps(Namespace).Delete(context.WithoutCancel(ctx), cm.Name, metav1.DeleteOptions{})
		_, err := newStore(t, cfg).List(ctx)
		want := "ConfigMap/meridian-system/" + cm.Name + `: inventory format "v2" is not "v1": it was written by another Meridian version; ` +
			"run a Meridian that reads it, or repair or delete it (deleting it makes Meridian forget the objects it applied for that unit, which are then never pruned)"
		if diff := cmp.Diff(want, errString(err)); diff != "" {
			t.Errorf("List error (-want +got):\n%s", diff)
		}
	})
}

// unit reads a unit's text form, as people write it in tests.
func unit(s string) fleet.UnitID {
	u, err := fleet.ParseUnitID(s)
	if err != nil {
		panic(err)
	}
	return u
}
