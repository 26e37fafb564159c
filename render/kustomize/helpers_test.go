package kustomize

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// symlinkPrefix marks a tree entry as a symlink to the rest of the string.
const symlinkPrefix = "symlink:"

// tree is a repository snapshot to write: path → content, or "symlink:target".
type tree map[string]string

// write creates the tree under dir.
func (tr tree) write(t testing.TB, dir string) {
	t.Helper()
	for name, content := range tr {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, symlinkPrefix); ok {
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot writes the tree into a fresh directory and returns its absolute path.
func snapshot(t testing.TB, tr tree) string {
	t.Helper()
	root := t.TempDir()
	tr.write(t, root)
	return root
}
