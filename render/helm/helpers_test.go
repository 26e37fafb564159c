package helm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
)

// newRenderer returns a Renderer with a cache of its own.
func newRenderer(t testing.TB, opts Options) *Renderer {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// writeTree writes files (slash path → content) and symlinks (slash path → target)
// under dir.
func writeTree(t testing.TB, dir string, files, links map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
}

// with returns a copy of base with the changes applied; an empty change deletes.
func with(base map[string]string, changes map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(changes))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range changes {
		if v == "" {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// localRequest is a request for the chart directory "chart" of apps/x.
func localRequest(root string) Request {
	return Request{
		Root:        root,
		AppDir:      "apps/x",
		Source:      fleet.HelmSource{Chart: "chart"},
		ReleaseName: "x",
		Namespace:   "trucking",
	}
}

// ids names objects as Kind/namespace/name, in their order.
func ids(objs []*unstructured.Unstructured) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = strings.Join([]string{o.GetKind(), o.GetNamespace(), o.GetName()}, "/")
	}
	return out
}

// render renders req and fails the test on error.
func mustRender(t testing.TB, r *Renderer, req Request) []*unstructured.Unstructured {
	t.Helper()
	objs, err := r.Render(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// errText is err's message, or "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
