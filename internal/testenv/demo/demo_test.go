package demo

import (
	"net"
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

// TestRunRefusesATakenAddress: a demo whose daemon address is in use says so
// and how to choose another before it starts anything.
func TestRunRefusesATakenAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := filepath.Join(t.TempDir(), "demo")
	err = Run(t.Context(), Options{FleetDir: filepath.Join("..", "..", "..", "fleet-example"), Dir: dir, Listen: l.Addr().String()})
	want := "the daemon's address " + l.Addr().String() + " is taken (another demo, or a daemon, running?): "
	if err == nil || !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), "; stop it, or pass --listen 127.0.0.1:PORT") {
		t.Fatalf("error = %v, want one starting %q and saying to pass --listen", err, want)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the refused demo made its directory: %v", err)
	}
}
