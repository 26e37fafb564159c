package openapi

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/discovery"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"meridian.dev/meridian/internal/testenv/testbed"
)

var regenerate = flag.Bool("regenerate", false, "regenerate the bundled schemas from a testbed kube-apiserver's /openapi/v3")

// TestRegenerate writes schemas/kubernetes-<minor>.json.gz from a real kube-apiserver
// of the version the testbed builds. It runs only with -regenerate:
//
//	go test ./render/openapi -run TestRegenerate -regenerate
func TestRegenerate(t *testing.T) {
	if !*regenerate {
		t.Skip("run with -regenerate to rewrite the bundled schemas")
	}
	tb := testbed.New(t, testbed.Options{Regions: 1})
	client, err := discovery.NewDiscoveryClientForConfig(tb.Regions[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	info, err := client.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	paths, err := client.OpenAPIV3().Paths()
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{Version: strings.TrimPrefix(info.GitVersion, "v"), Kinds: map[string]kindInfo{}, Schemas: map[string]json.RawMessage{}}
	for p, gv := range paths {
		if !strings.HasPrefix(p, "api/") && !strings.HasPrefix(p, "apis/") {
			continue // version, .well-known and the like: no kinds
		}
		doc, err := gv.Schema("application/json")
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if err := b.addGroupVersion(doc); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	// kube-openapi's validator follows $ref only through the hooks Validator gives it,
	// which allOf, anyOf, oneOf and not do not use.
	for name, raw := range b.Schemas {
		var sch spec.Schema
		if err := json.Unmarshal(raw, &sch); err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
		if refInCombinator(&sch) {
			t.Errorf("schema %s has a $ref inside allOf, anyOf, oneOf or not, which validation cannot follow; teach compactSchema to inline it", name)
		}
	}
	data, err := b.encode()
	if err != nil {
		t.Fatal(err)
	}
	minor, err := minorOf(b.Version)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join("schemas", "kubernetes-"+minor+".json.gz")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: Kubernetes %s, %d kinds, %d schemas, %d bytes", file, b.Version, len(b.Kinds), len(b.Schemas), len(data))
}

// refInCombinator reports whether a schema, or one below it, has an allOf, anyOf,
// oneOf or not whose schema is a $ref.
func refInCombinator(s *spec.Schema) bool {
	if s == nil {
		return false
	}
	for _, list := range [][]spec.Schema{s.AllOf, s.AnyOf, s.OneOf} {
		for i := range list {
			if list[i].Ref.String() != "" || refInCombinator(&list[i]) {
				return true
			}
		}
	}
	if s.Not != nil && (s.Not.Ref.String() != "" || refInCombinator(s.Not)) {
		return true
	}
	for _, p := range s.Properties {
		if refInCombinator(&p) {
			return true
		}
	}
	if s.Items != nil && refInCombinator(s.Items.Schema) {
		return true
	}
	return s.AdditionalProperties != nil && refInCombinator(s.AdditionalProperties.Schema)
}
