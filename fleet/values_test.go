package fleet

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMerge(t *testing.T) {
	tests := []struct {
		name   string
		layers []Values
		want   Values
	}{{
		name: "no layers",
		want: Values{},
	}, {
		name:   "later scalar wins",
		layers: []Values{{"a": 1}, {"a": 2}},
		want:   Values{"a": 2},
	}, {
		name:   "nested maps merge key by key",
		layers: []Values{{"image": map[string]any{"repo": "x", "tag": "1"}}, {"image": map[string]any{"tag": "2"}}},
		want:   Values{"image": map[string]any{"repo": "x", "tag": "2"}},
	}, {
		name:   "lists are replaced whole",
		layers: []Values{{"args": []any{"a", "b"}}, {"args": []any{"c"}}},
		want:   Values{"args": []any{"c"}},
	}, {
		name:   "a map replaces a scalar and a scalar replaces a map",
		layers: []Values{{"a": 1, "b": map[string]any{"x": 1}}, {"a": map[string]any{"y": 2}, "b": "flat"}},
		want:   Values{"a": map[string]any{"y": 2}, "b": "flat"},
	}, {
		name:   "nil layers are skipped",
		layers: []Values{nil, {"a": 1}, nil},
		want:   Values{"a": 1},
	}, {
		name:   "explicit null is kept, as Helm users expect to unset a default",
		layers: []Values{{"a": 1}, {"a": nil}},
		want:   Values{"a": nil},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Merge(tt.layers...)); diff != "" {
				t.Errorf("Merge (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMergeDoesNotAlias checks that changing a merge result never reaches the layers
// (placements share app and region values; one must not leak into another).
func TestMergeDoesNotAlias(t *testing.T) {
	base := Values{"image": map[string]any{"tag": "1"}, "args": []any{"a"}}
	out := Merge(base, Values{"other": true})
	out["image"].(map[string]any)["tag"] = "changed"
	out["args"].([]any)[0] = "changed"
	want := Values{"image": map[string]any{"tag": "1"}, "args": []any{"a"}}
	if diff := cmp.Diff(want, base); diff != "" {
		t.Errorf("layer changed through the result (-want +got):\n%s", diff)
	}
}
