package kustomize

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	"github.com/google/go-cmp/cmp"
)

// fsFixture is a snapshot at parent/snapshot with a file beside it at parent/outside.
func fsFixture(t *testing.T) (*snapshotFS, string, string) {
	t.Helper()
	parent := t.TempDir()
	root := filepath.Join(parent, "snapshot")
	outside := filepath.Join(parent, "outside")
	tree{"secret.txt": "outside-secret\n", "kustomization.yaml": "resources: [secret.yaml]\n"}.write(t, outside)
	tree{
		"a/file.txt":              "inside\n",
		"a/link-in.txt":           symlinkPrefix + "file.txt",
		"a/dir-link":              symlinkPrefix + "../b",
		"b/nested.txt":            "nested\n",
		"a/link-out.txt":          symlinkPrefix + filepath.Join(outside, "secret.txt"),
		"a/dir-out":               symlinkPrefix + outside,
		"a/relative-out":          symlinkPrefix + "../../outside",
		"a/chain-1":               symlinkPrefix + "chain-2",
		"a/chain-2":               symlinkPrefix + "file.txt",
		"app/kustomization.yaml":  "resources: [../../outside]\n",
		"app2/kustomization.yaml": "resources: [escape/secret.txt]\n",
		"app2/escape":             symlinkPrefix + outside,
	}.write(t, root)
	fsys, err := newSnapshotFS(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys, root, outside
}

func TestSnapshotFSReads(t *testing.T) {
	fsys, root, outside := fsFixture(t)
	tests := []struct {
		name       string
		path       string
		want       string
		wantEscape string
	}{
		{name: "file inside, absolute", path: filepath.Join(root, "a/file.txt"), want: "inside\n"},
		{name: "file inside, relative to the root", path: "a/file.txt", want: "inside\n"},
		{name: "symlink to a file inside", path: "a/link-in.txt", want: "inside\n"},
		{name: "chain of symlinks inside", path: "a/chain-1", want: "inside\n"},
		{name: "through a symlinked directory inside", path: "a/dir-link/nested.txt", want: "nested\n"},
		{name: "dot-dot out of the root", path: "a/../../outside/secret.txt", wantEscape: "path ../outside/secret.txt leaves the snapshot root"},
		{name: "absolute path outside", path: filepath.Join(outside, "secret.txt"), wantEscape: "path ../outside/secret.txt leaves the snapshot root"},
		{name: "symlink to a file outside", path: "a/link-out.txt",
			wantEscape: "path a/link-out.txt leaves the snapshot root through a symlink (a/link-out.txt -> " + filepath.Join(outside, "secret.txt") + ")"},
		{name: "through a symlinked directory outside", path: "a/dir-out/secret.txt",
			wantEscape: "path a/dir-out/secret.txt leaves the snapshot root through a symlink (a/dir-out -> " + outside + ")"},
		{name: "through a relative symlink outside", path: "a/relative-out/secret.txt",
			wantEscape: "path a/relative-out/secret.txt leaves the snapshot root through a symlink (a/relative-out -> " + outside + ")"},
		{name: "missing file behind a symlink outside", path: "a/dir-out/missing.txt",
			wantEscape: "path a/dir-out leaves the snapshot root through a symlink (a/dir-out -> " + outside + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fsys.ReadFile(tt.path)
			if tt.wantEscape == "" {
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tt.want {
					t.Errorf("ReadFile = %q, want %q", got, tt.want)
				}
				return
			}
			var escape *escapeError
			if !errors.As(err, &escape) {
				t.Fatalf("ReadFile(%s) = %q, %v; want an escape error", tt.path, got, err)
			}
			if diff := cmp.Diff(tt.wantEscape, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if fsys.Exists(tt.path) || fsys.IsDir(tt.path) {
				t.Errorf("Exists or IsDir is true for %s", tt.path)
			}
			if _, _, err := fsys.CleanedAbs(tt.path); !errors.As(err, &escape) {
				t.Errorf("CleanedAbs(%s) error = %v, want an escape error", tt.path, err)
			}
			if _, err := fsys.Open(tt.path); !errors.As(err, &escape) {
				t.Errorf("Open(%s) error = %v, want an escape error", tt.path, err)
			}
		})
	}
	got := struct{ Inputs, Symlinks []string }{fsys.Inputs(), fsys.Symlinks()}
	want := struct{ Inputs, Symlinks []string }{
		Inputs:   []string{"a/file.txt", "b/nested.txt"},
		Symlinks: []string{"a/chain-1", "a/chain-2", "a/dir-link", "a/link-in.txt"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inputs and symlinks (-want +got):\n%s", diff)
	}
}

func TestSnapshotFSListsAndWalksInsideOnly(t *testing.T) {
	fsys, root, outside := fsFixture(t)
	names, err := fsys.ReadDir("a")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"chain-1", "chain-2", "dir-link", "dir-out", "file.txt", "link-in.txt", "link-out.txt", "relative-out"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("ReadDir (-want +got):\n%s", diff)
	}
	if _, err := fsys.ReadDir(outside); err == nil {
		t.Error("ReadDir outside the root succeeded")
	}
	matches, err := fsys.Glob(filepath.Join(root, "a", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	wantMatches := []string{filepath.Join(root, "a/file.txt"), filepath.Join(root, "a/link-in.txt")}
	if diff := cmp.Diff(wantMatches, matches); diff != "" {
		t.Errorf("Glob leaves out link-out.txt (-want +got):\n%s", diff)
	}
	var walked []string
	err = fsys.Walk(filepath.Join(root, "b"), func(path string, _ fs.FileInfo, err error) error {
		walked = append(walked, fsys.rel(path))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b", "b/nested.txt"}, walked); diff != "" {
		t.Errorf("Walk (-want +got):\n%s", diff)
	}
}

func TestSnapshotFSNeverWrites(t *testing.T) {
	fsys, root, _ := fsFixture(t)
	target := filepath.Join(root, "new.txt")
	for name, err := range map[string]error{
		"WriteFile": fsys.WriteFile(target, []byte("x")),
		"Mkdir":     fsys.Mkdir(target),
		"MkdirAll":  fsys.MkdirAll(target),
		"RemoveAll": fsys.RemoveAll(filepath.Join(root, "a")),
		"Create":    func() error { _, err := fsys.Create(target); return err }(),
	} {
		if !errors.Is(err, errReadOnly) {
			t.Errorf("%s error = %v, want errReadOnly", name, err)
		}
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists after refused writes", target)
	}
	if _, err := os.Stat(filepath.Join(root, "a/file.txt")); err != nil {
		t.Errorf("RemoveAll removed files: %v", err)
	}
}

// TestKustomizeReadsOnlyThroughSnapshotFS runs kustomize directly on snapshotFS,
// without the policy walk, to show that the file system alone stops escapes and
// sees every read kustomize makes.
func TestKustomizeReadsOnlyThroughSnapshotFS(t *testing.T) {
	fsys, root, outside := fsFixture(t)
	for dir, want := range map[string]string{
		"app":  "path ../outside leaves the snapshot root",
		"app2": "path app2/escape/secret.txt leaves the snapshot root through a symlink (app2/escape -> " + outside + ")",
	} {
		_, err := fluxkustomize.Build(fsys, filepath.Join(root, dir))
		var escape *escapeError
		if !errors.As(err, &escape) {
			t.Fatalf("%s: kustomize error %v does not come from snapshotFS", dir, err)
		}
		if diff := cmp.Diff(want, escape.Error()); diff != "" {
			t.Errorf("%s: escape (-want +got):\n%s", dir, diff)
		}
	}

	root2 := snapshot(t, merge(webBase, webOverlay))
	fsys2, err := newSnapshotFS(root2)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys2.Close()
	if _, err := fluxkustomize.Build(fsys2, filepath.Join(root2, "apps/web/overlay")); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"apps/web/overlay/config/app.properties",
		"apps/web/overlay/kustomization.yaml",
		"apps/web/overlay/replicas.yaml",
		"apps/web/overlay/secret.env",
		"bases/web/deployment.yaml",
		"bases/web/kustomization.yaml",
		"bases/web/service.yaml",
	}
	if diff := cmp.Diff(want, fsys2.Inputs()); diff != "" {
		t.Errorf("files kustomize read through snapshotFS (-want +got):\n%s", diff)
	}
}
