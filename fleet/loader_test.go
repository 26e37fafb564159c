package fleet

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLoaderParsesOnlyChangedFiles loads fleet-example several times with one
// Loader: each model equals LoadDir's, an unchanged file's document and decoded
// object are the previous load's, a changed file is parsed and decoded again,
// and a broken or invalid one is reported as LoadDir reports it, every time.
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
	before := must(ld.LoadDir(dir))
	// Unchanged: the decoded objects are reused.
	after := must(ld.LoadDir(dir))
	// replicas: 3 again.
	if err := os.WriteFile(tenant, data, 0o644); err != nil {
		t.Fatal(err)
	}
	changed := must(ld.LoadDir(dir))
	same(must(LoadDir(dir)), changed)
	for _, name := range []string{"logistics-eu", "trucking"} {
		reused := &after.Tenant(name).Spec.Apps[0] == &changed.Tenant(name).Spec.Apps[0]
		if want := name != "trucking"; reused != want {
			t.Errorf("tenant %s: decoded object reused = %v, want %v", name, reused, want)
		}
		if &before.Tenant(name).Spec.Apps[0] != &after.Tenant(name).Spec.Apps[0] {
			t.Errorf("tenant %s: decoded again though unchanged", name)
		}
	}
	for file, doc := range first {
		if changed := file == "tenants/trucking.yaml"; (ld.docs[file].node != doc.node) != changed {
			t.Errorf("%s: parsed again = %v, want %v", file, ld.docs[file].node != doc.node, changed)
		}
	}

	for _, bad := range []struct{ name, content string }{
		{"not YAML", "kind: Tenant\nspec: [\n"},
		{"an unknown field", strings.Replace(string(data), "spec:", "spec:\n  replicaz: 2", 1)},
	} {
		if err := os.WriteFile(tenant, []byte(bad.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, want := LoadDir(dir)
		for range 2 {
			if _, got := ld.LoadDir(dir); want == nil || got == nil || want.Error() != got.Error() {
				t.Errorf("tenant file with %s: Loader error %v, LoadDir error %v", bad.name, got, want)
			}
		}
	}
}

// TestLoaderSkipsFilesOfTheSameID loads with content IDs: a file whose ID is
// the one of the previous load is not read (its content on disk changed here
// behind the ID's back, and the model keeps the previous content), one whose ID
// changed or that has none is read.
func TestLoaderSkipsFilesOfTheSameID(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../fleet-example")); err != nil {
		t.Fatal(err)
	}
	tenant := filepath.Join(dir, "tenants", "trucking.yaml")
	data, err := os.ReadFile(tenant)
	if err != nil {
		t.Fatal(err)
	}
	replicas := func(m *Model) any {
		return m.Tenant("trucking").Spec.Apps[0].Values["replicas"]
	}
	ld := &Loader{}
	ids := map[string]string{"tenants/trucking.yaml": "blob-1"}
	first, err := ld.Load(dir, ids)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tenant, []byte(strings.Replace(string(data), "replicas: 3", "replicas: 4", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name string
		ids  map[string]string
		want any
	}{
		{"same ID", ids, replicas(first)},
		{"another ID", map[string]string{"tenants/trucking.yaml": "blob-2"}, 4},
		{"no ID", nil, 4},
	} {
		m, err := ld.Load(dir, step.ids)
		if err != nil {
			t.Fatal(err)
		}
		if got := replicas(m); got != step.want {
			t.Errorf("%s: replicas %v, want %v", step.name, got, step.want)
		}
	}
}
