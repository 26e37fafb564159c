package openapi

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/discovery"

	"meridian.dev/meridian/internal/testbed"
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
