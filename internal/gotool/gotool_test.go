package gotool

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestKeyFollowsWhatTheBinaryIsBuiltFrom: the cache key changes with the go.mod
// and go.sum, the package and what is required besides, and with nothing else.
func TestKeyFollowsWhatTheBinaryIsBuiltFrom(t *testing.T) {
	ctx := context.Background()
	mod := func(gomod, gosum string) string {
		dir := t.TempDir()
		for name, content := range map[string]string{"go.mod": gomod, "go.sum": gosum} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	base := Program{Name: "helm", Package: "helm.sh/helm/v3/cmd/helm", ModDir: mod("module a\n\ngo 1.26\n", "")}
	key := func(p Program) string {
		t.Helper()
		k, err := Key(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	want := key(base)
	same := base
	same.ModDir = mod("module a\n\ngo 1.26\n", "")
	if got := key(same); got != want {
		t.Errorf("the same go.mod in another directory: key %s, want %s", got, want)
	}
	for name, p := range map[string]Program{
		"go.mod":  {Name: base.Name, Package: base.Package, ModDir: mod("module a\n\ngo 1.26\n\nrequire x.y/z v1.0.0\n", "")},
		"go.sum":  {Name: base.Name, Package: base.Package, ModDir: mod("module a\n\ngo 1.26\n", "x.y/z v1.0.0 h1:abc=\n")},
		"package": {Name: base.Name, Package: "helm.sh/helm/v3/cmd/other", ModDir: base.ModDir},
		"require": {Name: base.Name, Package: base.Package, ModDir: base.ModDir, Require: "x.y/z@v1.0.0"},
	} {
		if key(p) == want {
			t.Errorf("another %s gives the same key", name)
		}
	}
}
