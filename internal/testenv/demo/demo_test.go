package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"meridian.dev/meridian/fleet"
)

func TestPrepareDirDeletesOnlyWhatADemoMade(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := prepareDir(dir)
	if err == nil || !strings.Contains(err.Error(), "is not empty and not a demo directory; choose another with --dir") {
		t.Fatalf("error = %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("a refused directory lost a file: %v", err)
	}

	demo := filepath.Join(dir, "demo")
	if err := prepareDir(demo); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(demo, "meridian.log")
	if err := os.WriteFile(left, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := prepareDir(demo); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("what the last demo left is still there: %v", err)
	}
}

func TestLocalEndpointKeepsTheRegionValid(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "..", "fleet-example"))); err != nil {
		t.Fatal(err)
	}
	for i, region := range []string{"us-east-1", "eu-west-2", "ap-northeast-2"} {
		if err := localEndpoint(filepath.Join(dir, "regions", region+".yaml"), "127.0.0.1"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
	}
	m, err := fleet.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range m.Regions {
		if r.Spec.Endpoint.Type != fleet.EndpointA || !strings.HasPrefix(r.Spec.Endpoint.Target, "127.0.0.1") {
			t.Errorf("%s: endpoint %+v", r.Metadata.Name, r.Spec.Endpoint)
		}
	}
}
