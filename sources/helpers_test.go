package sources

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"meridian.dev/meridian/internal/testenv/gitserver"
)

// repoName is the repository every test server holds.
const repoName = "fleet.git"

// newRepo starts a git server with opts, creates repoName on it and returns
// the server and a workdir cloned from it.
func newRepo(t *testing.T, opts gitserver.Options) (*gitserver.Server, *gitserver.Workdir) {
	t.Helper()
	s := gitserver.New(t, opts)
	if _, err := s.CreateRepo(repoName); err != nil {
		t.Fatal(err)
	}
	w, err := s.Clone(t.Context(), repoName)
	if err != nil {
		t.Fatal(err)
	}
	return s, w
}

// push commits files in w and pushes the branch; it returns the commit.
func push(t *testing.T, w *gitserver.Workdir, msg string, files map[string]string) string {
	t.Helper()
	h, err := w.CommitFiles(t.Context(), msg, files)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Push(t.Context()); err != nil {
		t.Fatal(err)
	}
	return h
}

// gitCmd runs git in w and fails the test on error.
func gitCmd(t *testing.T, w *gitserver.Workdir, args ...string) string {
	t.Helper()
	out, err := w.Git(t.Context(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cacheDir returns a cache directory that is removed after the test even
// though snapshots in it are read-only.
func cacheDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		if err := removeTree(dir); err != nil {
			t.Errorf("remove cache: %v", err)
		}
	})
	return dir
}

// newGit builds a source, with a fresh cache directory unless one is set.
func newGit(t *testing.T, opts GitOptions) *Git {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = cacheDir(t)
	}
	g, err := NewGit(opts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// mustFetch fetches and fails the test on error.
func mustFetch(t *testing.T, g *Git) *Snapshot {
	t.Helper()
	s, err := g.Fetch(t.Context())
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return s
}

// requestsSince returns a summary of the server's requests after the first
// n, as "METHOD service" for HTTP and "ssh service" for SSH.
func requestsSince(s *gitserver.Server, n int) []string {
	var out []string
	for _, r := range s.Requests()[n:] {
		if r.Transport == "ssh" {
			out = append(out, "ssh "+r.Service)
			continue
		}
		out = append(out, r.Method+" "+r.Service)
	}
	return out
}

// readTree returns the files below dir: regular files by content, symbolic
// links as "-> target".
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			files[rel] = "-> " + target
			return err
		}
		b, err := os.ReadFile(p)
		files[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// treeState records every path below dir with its mode, size and
// modification time, to tell whether anything was written.
func treeState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %s %d %s\n", rel, info.Mode(), info.Size(), info.ModTime().Format(time.RFC3339Nano))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// blobID is the content ID Snapshot.Files gives a regular file holding data.
func blobID(data string) string {
	return plumbing.ComputeHash(plumbing.BlobObject, []byte(data)).String() + " " + filemode.Regular.String()
}
