package openapi

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBundleGroupVersion checks what a bundle keeps of one group-version's
// /openapi/v3 document: compacted schemas, and the kinds clients can create with
// their scope, leaving out subresources.
func TestBundleGroupVersion(t *testing.T) {
	doc := `{
	  "paths": {
	    "/apis/example.com/v1/namespaces/{namespace}/gadgets": {"post": {
	      "x-kubernetes-action": "post",
	      "x-kubernetes-group-version-kind": {"group": "example.com", "version": "v1", "kind": "Gadget"},
	      "requestBody": {"content": {"*/*": {"schema": {"$ref": "#/components/schemas/com.example.v1.Gadget"}}}}}},
	    "/apis/example.com/v1/namespaces/{namespace}/gadgets/{name}/eviction": {"post": {
	      "x-kubernetes-action": "post",
	      "x-kubernetes-group-version-kind": {"group": "example.com", "version": "v1", "kind": "Eviction"},
	      "requestBody": {"content": {"*/*": {"schema": {"$ref": "#/components/schemas/com.example.v1.Eviction"}}}}}},
	    "/apis/example.com/v1/gizmos": {"post": {
	      "x-kubernetes-action": "post",
	      "x-kubernetes-group-version-kind": {"group": "example.com", "version": "v1", "kind": "Gizmo"},
	      "requestBody": {"content": {"*/*": {"schema": {"$ref": "#/components/schemas/com.example.v1.Gizmo"}}}}}},
	    "/apis/example.com/v1/gadgets": {"get": {}}
	  },
	  "components": {"schemas": {
	    "com.example.v1.Gadget": {
	      "description": "dropped", "type": "object", "required": ["spec"],
	      "properties": {
	        "spec": {"description": "dropped", "default": {}, "allOf": [{"$ref": "#/components/schemas/com.example.v1.GadgetSpec"}]},
	        "ports": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "integer", "format": "int32"}}
	      }
	    }
	  }}
	}`
	b := &bundle{Kinds: map[string]kindInfo{}, Schemas: map[string]json.RawMessage{}}
	if err := b.addGroupVersion([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	wantKinds := map[string]kindInfo{
		"example.com/v1/Gadget": {Schema: "com.example.v1.Gadget", Namespaced: true},
		"example.com/v1/Gizmo":  {Schema: "com.example.v1.Gizmo", Namespaced: false},
	}
	if diff := cmp.Diff(wantKinds, b.Kinds); diff != "" {
		t.Errorf("kinds (-want +got):\n%s", diff)
	}
	want := `{"properties":{"ports":{"items":{"format":"int32","type":"integer"},"type":"array"},"spec":{"$ref":"#/components/schemas/com.example.v1.GadgetSpec"}},"required":["spec"],"type":"object"}`
	if diff := cmp.Diff(want, string(b.Schemas["com.example.v1.Gadget"])); diff != "" {
		t.Errorf("compacted schema (-want +got):\n%s", diff)
	}
}
