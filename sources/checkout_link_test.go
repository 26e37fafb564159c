package sources

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"meridian.dev/meridian/internal/testenv/gitserver"
)

// TestCheckoutLinksUnchangedFiles fetches two commits: the second snapshot's
// unchanged files are the first's (hard links, read-only) and have the same
// content IDs (Snapshot.Files), its changed and new files are its own with IDs
// of their own, and every file reads as the commit has it.
func TestCheckoutLinksUnchangedFiles(t *testing.T) {
	t.Parallel()
	s, w := newRepo(t, gitserver.Options{})
	push(t, w, "one", map[string]string{"fleet.yaml": "fleet\n", "tenants/a.yaml": "a1\n", "tenants/b.yaml": "b1\n"})
	g := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}})
	first := mustFetch(t, g)
	push(t, w, "two", map[string]string{"tenants/a.yaml": "a2\n", "tenants/c.yaml": "c1\n"})
	second := mustFetch(t, g)

	inode := func(dir, name string) (uint64, os.FileMode) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino, fi.Mode()
	}
	for _, tc := range []struct {
		name, content string
		shared        bool
	}{
		{"fleet.yaml", "fleet\n", true},
		{"tenants/b.yaml", "b1\n", true},
		{"tenants/a.yaml", "a2\n", false},
		{"tenants/c.yaml", "c1\n", false},
	} {
		data, err := os.ReadFile(filepath.Join(second.Dir, tc.name))
		if err != nil || string(data) != tc.content {
			t.Errorf("%s = %q, %v; want %q", tc.name, data, err, tc.content)
		}
		ino, mode := inode(second.Dir, tc.name)
		if mode.Perm() != 0o444 {
			t.Errorf("%s: mode %v, want read-only", tc.name, mode)
		}
		if second.Files[tc.name] == "" {
			t.Errorf("%s: no content ID in the snapshot", tc.name)
		}
		if tc.name == "tenants/c.yaml" {
			continue
		}
		prevIno, _ := inode(first.Dir, tc.name)
		if got := ino == prevIno; got != tc.shared {
			t.Errorf("%s: linked from the first snapshot = %v, want %v", tc.name, got, tc.shared)
		}
		if got := first.Files[tc.name] == second.Files[tc.name]; got != tc.shared {
			t.Errorf("%s: same content ID in both snapshots = %v, want %v", tc.name, got, tc.shared)
		}
	}
	if len(second.Files) != 4 {
		t.Errorf("the second snapshot identifies %d files, want 4: %v", len(second.Files), second.Files)
	}
	if data, _ := os.ReadFile(filepath.Join(first.Dir, "tenants/a.yaml")); string(data) != "a1\n" {
		t.Errorf("the first snapshot's tenants/a.yaml = %q after the second checkout, want it unchanged", data)
	}
}
