package render

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
)

// same reports whether a and b are one map or slice in memory.
func same(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.IsValid() && vb.IsValid() && va.Kind() == vb.Kind() && (va.Kind() == reflect.Map || va.Kind() == reflect.Slice) &&
		va.Len() == vb.Len() && va.UnsafePointer() == vb.UnsafePointer()
}

func TestInternerSharesEqualSubtreesOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b any
		same bool
	}{
		{"equal maps", map[string]any{"a": "x", "b": int64(1)}, map[string]any{"b": int64(1), "a": "x"}, true},
		{"equal nested maps and slices", map[string]any{"c": []any{map[string]any{"d": true}, nil, 1.5}}, map[string]any{"c": []any{map[string]any{"d": true}, nil, 1.5}}, true},
		{"equal slices", []any{"x", int64(2)}, []any{"x", int64(2)}, true},
		{"empty maps", map[string]any{}, map[string]any{}, true},
		{"different strings", map[string]any{"a": "x"}, map[string]any{"a": "y"}, false},
		{"different keys", map[string]any{"a": "x"}, map[string]any{"b": "x"}, false},
		{"a key more", map[string]any{"a": "x"}, map[string]any{"a": "x", "b": "x"}, false},
		{"int64 and float64", map[string]any{"a": int64(1)}, map[string]any{"a": float64(1)}, false},
		{"number and string", map[string]any{"a": int64(1)}, map[string]any{"a": "1"}, false},
		{"bool and string", map[string]any{"a": true}, map[string]any{"a": "true"}, false},
		{"nil and empty string", map[string]any{"a": nil}, map[string]any{"a": ""}, false},
		{"empty map and empty slice", map[string]any{"a": map[string]any{}}, map[string]any{"a": []any{}}, false},
		{"empty map and nil", map[string]any{"a": map[string]any{}}, map[string]any{"a": nil}, false},
		{"empty map and nil map", map[string]any{"a": map[string]any{}}, map[string]any{"a": map[string]any(nil)}, false},
		{"empty slice and nil", map[string]any{"a": []any{}}, map[string]any{"a": nil}, false},
		{"empty slice and nil slice", map[string]any{"a": []any{}}, map[string]any{"a": []any(nil)}, false},
		{"nil map and nil slice", map[string]any{"a": map[string]any(nil)}, map[string]any{"a": []any(nil)}, false},
		{"slices in another order", []any{"x", "y"}, []any{"y", "x"}, false},
		{"a longer slice", []any{"x"}, []any{"x", "x"}, false},
		{"deep difference", map[string]any{"a": map[string]any{"b": []any{int64(1)}}}, map[string]any{"a": map[string]any{"b": []any{float64(1)}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantA, wantB := encodeJSON(t, tc.a), encodeJSON(t, tc.b)
			in := newInterner()
			a, b := in.intern(tc.a), in.intern(tc.b)
			if got := same(a, b); got != tc.same {
				t.Errorf("shared: %t, want %t", got, tc.same)
			}
			if got := encodeJSON(t, a); got != wantA {
				t.Errorf("a changed: %s, want %s", got, wantA)
			}
			if got := encodeJSON(t, b); got != wantB {
				t.Errorf("b changed: %s, want %s", got, wantB)
			}
			if got := fmt.Sprintf("%#v", b); got != fmt.Sprintf("%#v", tc.b) { // Go types too, not only the JSON
				t.Errorf("b is %s, want %s", got, fmt.Sprintf("%#v", tc.b))
			}
		})
	}
}

func TestInternerSharesSubtreesOfDifferentObjects(t *testing.T) {
	in := newInterner()
	probe := func() map[string]any {
		return map[string]any{"httpGet": map[string]any{"path": "/healthz", "port": int64(8080)}}
	}
	a := in.intern(map[string]any{"metadata": map[string]any{"name": "a"}, "spec": map[string]any{"probe": probe(), "replicas": int64(1)}}).(map[string]any)
	b := in.intern(map[string]any{"metadata": map[string]any{"name": "b"}, "spec": map[string]any{"probe": probe(), "replicas": int64(2)}}).(map[string]any)
	pa, _, _ := unstructured.NestedFieldNoCopy(a, "spec", "probe")
	pb, _, _ := unstructured.NestedFieldNoCopy(b, "spec", "probe")
	if !same(pa, pb) {
		t.Error("the equal probes of two objects are two maps")
	}
	if same(a["spec"], b["spec"]) {
		t.Error("two different specs are one map")
	}
}

func TestInternerCollisionSharesNothing(t *testing.T) {
	in := newInterner()
	a, b := map[string]any{"a": "x"}, map[string]any{"a": "y"}
	in.lookup(a, 42)
	if got := in.lookup(b, 42); !same(got, b) {
		t.Errorf("a value whose hash another has is %v, want itself", got)
	}
	if got := in.lookup(map[string]any{"a": "x"}, 42); !same(got, a) {
		t.Errorf("an equal value of the same hash is %v, not the interned one", got)
	}
}

// TestCacheInternsOnlyWhatItHolds fills a cache of 4 entries with objects that
// share nothing: the interning table keeps the values of the live entries and of
// at most a quarter of the cache's size of evicted ones, not of every entry ever put.
func TestCacheInternsOnlyWhatItHolds(t *testing.T) {
	const max, nodes = 4, 2 // each object is a map and its spec
	c := newCache(max)
	for i := range 20 {
		obj := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"n": int64(i)}}}
		c.put(fmt.Sprint(i), fmt.Sprint(i), []*unstructured.Unstructured{obj}, nil)
		if got, bound := len(c.interned.table), nodes*(max+max/4+1); got > bound {
			t.Fatalf("after %d entries the table holds %d values, more than %d", i+1, got, bound)
		}
	}
	// A new entry still shares with the live ones after the table was built again.
	obj := &unstructured.Unstructured{Object: map[string]any{"other": true, "spec": map[string]any{"n": int64(19)}}}
	c.put("new", "new", []*unstructured.Unstructured{obj}, nil)
	live, _, ok := c.get("19", nil)
	if !ok {
		t.Fatal("entry 19 was evicted")
	}
	if !same(obj.Object["spec"], live[0].Object["spec"]) {
		t.Error("a new entry does not share an equal spec with a live entry")
	}
}

// TestUnitsShareNothingTheyMayWrite renders a fleet whose units share subtrees
// through the cache (and whose objects share labels within a unit), then changes objects of one pass as the Unit documentation
// lets callers: their own metadata's labels and annotations in place, anything
// else on a deep copy. No other unit, of that pass or another, may change.
func TestUnitsShareNothingTheyMayWrite(t *testing.T) {
	r := newTestRenderer(t, true)
	snap := loadSnapshot(t, exampleDir, "aaaa1111")
	first := renderOK(t, r, snap, Filter{})
	second := renderOK(t, r, snap, Filter{})
	want := encode(t, first.Units)

	sharedAcross := 0 // nested maps one unit's objects share with another unit's
	owner := map[uintptr]fleet.UnitID{}
	for _, u := range first.Units {
		for _, o := range u.All() {
			for _, m := range nestedMaps(o.Object["spec"]) {
				p := uintptr(reflect.ValueOf(m).UnsafePointer())
				if id, ok := owner[p]; ok && id != u.ID() {
					sharedAcross++
				}
				owner[p] = u.ID()
			}
		}
	}
	if sharedAcross == 0 {
		t.Fatal("no unit shares a nested map with another: the cache does not intern")
	}
	sharedLabels := 0 // objects whose labels are another object's of their unit
	for _, u := range first.Units {
		all := u.All()
		for i := 1; i < len(all); i++ {
			if same(all[i].Object["metadata"].(map[string]any)["labels"], all[i-1].Object["metadata"].(map[string]any)["labels"]) {
				sharedLabels++
			}
		}
	}
	if sharedLabels == 0 {
		t.Fatal("no object shares its labels with another of its unit")
	}

	for _, u := range second.Units {
		for _, o := range u.All() {
			labels := o.GetLabels()
			labels["written"] = "by a test"
			o.SetLabels(labels)
			o.SetAnnotations(map[string]string{"written": "by a test"})
			c := o.DeepCopy()
			for _, m := range nestedMaps(c.Object) {
				m["written"] = "by a test"
			}
		}
	}
	if diff := cmp.Diff(want, encode(t, first.Units)); diff != "" {
		t.Errorf("writing the second pass's objects changed the first's (-want +got):\n%s", diff)
	}
	third := renderOK(t, r, snap, Filter{})
	if diff := cmp.Diff(want, encode(t, third.Units)); diff != "" {
		t.Errorf("writing a pass's objects changed the cache (-want +got):\n%s", diff)
	}
}

// nestedMaps returns v's maps, v's own included, depth first.
func nestedMaps(v any) []map[string]any {
	var out []map[string]any
	switch v := v.(type) {
	case map[string]any:
		out = append(out, v)
		for _, e := range v {
			out = append(out, nestedMaps(e)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, nestedMaps(e)...)
		}
	}
	return out
}

func encodeJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
