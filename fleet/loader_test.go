package fleet

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLoaderParsesOnlyChangedFiles loads fleet-example three times with one
// Loader: each model equals LoadDir's, an unchanged file's document is the
// previous load's, a changed file is parsed again (and a broken one reported
// as LoadDir reports it).
func TestLoaderParsesOnlyChangedFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../fleet-example")); err != nil {
		t.Fatal(err)
	}
	tenant := filepath.Join(dir, "tenants", "trucking.yaml")
	must := func(m *Model, err error) *Model {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ld := &Loader{}
	same := func(want, got *Model) {
		t.Helper()
		if !reflect.DeepEqual(want, got) {
			t.Errorf("the Loader's model differs from LoadDir's")
		}
	}
	same(must(LoadDir(dir)), must(ld.LoadDir(dir)))
	first := ld.docs
	if len(first) == 0 {
		t.Fatal("the Loader kept no parsed document")
	}
	same(must(LoadDir(dir)), must(ld.LoadDir(dir)))
	for file, doc := range first {
		if ld.docs[file].node != doc.node {
			t.Errorf("%s: parsed again though unchanged", file)
		}
	}

	data, err := os.ReadFile(tenant)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tenant, []byte(strings.Replace(string(data), "replicas: 3", "replicas: 4", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	same(must(LoadDir(dir)), must(ld.LoadDir(dir)))
	for file, doc := range first {
		if changed := file == "tenants/trucking.yaml"; (ld.docs[file].node != doc.node) != changed {
			t.Errorf("%s: parsed again = %v, want %v", file, ld.docs[file].node != doc.node, changed)
		}
	}

	if err := os.WriteFile(tenant, []byte("kind: Tenant\nspec: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, want := LoadDir(dir)
	_, got := ld.LoadDir(dir)
	if want == nil || got == nil || want.Error() != got.Error() {
		t.Errorf("broken tenant file: Loader error %v, LoadDir error %v", got, want)
	}
}
