package sources

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/gitserver"
)

// testEpoch is the date gitserver gives the first commit of a history.
var testEpoch = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// TestFetchTransports fetches a branch over plain HTTP, and over HTTPS with
// the server's CA and basic or bearer credentials, and checks the whole
// snapshot.
func TestFetchTransports(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		srv  gitserver.Options
		auth Auth
	}{
		{"plain http", gitserver.Options{}, Auth{}},
		{"https basic", gitserver.Options{TLS: true, Username: "fleet", Password: "s3cret-pass"}, Auth{Username: "fleet", Password: "s3cret-pass"}},
		{"https bearer", gitserver.Options{TLS: true, BearerToken: "tok-0123456789"}, Auth{BearerToken: "tok-0123456789"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, w := newRepo(t, tt.srv)
			head := push(t, w, "Add the fleet\n\nWith one region.\n", map[string]string{
				"fleet.yaml":           "kind: Fleet\n",
				"regions/us-east.yaml": "kind: Region\n",
			})
			cache := cacheDir(t)
			g := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}, Auth: tt.auth, CABundle: s.CAPEM(), CacheDir: cache})
			got := mustFetch(t, g)
			when := testEpoch.In(got.Commit.Author.When.Location())
			want := &Snapshot{
				Dir:      filepath.Join(cache, "snapshots", head),
				Revision: head,
				Ref:      "refs/heads/main",
				Commit: Commit{
					Author:    Person{Name: gitserver.AuthorName, Email: gitserver.AuthorEmail, When: when},
					Committer: Person{Name: gitserver.AuthorName, Email: gitserver.AuthorEmail, When: when},
					Subject:   "Add the fleet",
					Body:      "With one region.",
				},
				Files: map[string]string{
					"fleet.yaml":           blobID("kind: Fleet\n"),
					"regions/us-east.yaml": blobID("kind: Region\n"),
				},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("snapshot (-want +got):\n%s", diff)
			}
			if !got.Commit.Author.When.Equal(testEpoch) {
				t.Errorf("author date = %v, want %v", got.Commit.Author.When, testEpoch)
			}
			wantFiles := map[string]string{"fleet.yaml": "kind: Fleet\n", "regions/us-east.yaml": "kind: Region\n"}
			if diff := cmp.Diff(wantFiles, readTree(t, got.Dir)); diff != "" {
				t.Errorf("snapshot files (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(got, g.Last()); diff != "" {
				t.Errorf("Last() (-fetched +last):\n%s", diff)
			}
		})
	}
}

// TestFetchRefs resolves branches, lightweight and annotated tags and semver
// ranges on one repository.
func TestFetchRefs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, w := newRepo(t, gitserver.Options{})
	c1 := push(t, w, "one", map[string]string{"version": "1.0.0\n"})
	if err := w.Tag(ctx, "v1.0.0", ""); err != nil {
		t.Fatal(err)
	}
	c2 := push(t, w, "two", map[string]string{"version": "1.1.0\n"})
	if err := w.Tag(ctx, "v1.1.0", "release 1.1.0"); err != nil {
		t.Fatal(err)
	}
	if err := w.Push(ctx, "HEAD:refs/heads/staging"); err != nil {
		t.Fatal(err)
	}
	c3 := push(t, w, "three", map[string]string{"version": "2.0.0-rc.1\n"})
	for _, tag := range []string{"v2.0.0-rc.1", "2024", "release-3", "v1.1"} {
		if err := w.Tag(ctx, tag, ""); err != nil {
			t.Fatal(err)
		}
	}
	c4 := push(t, w, "four", map[string]string{"version": "main\n"})
	if err := w.Push(ctx, "refs/tags/*:refs/tags/*"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		ref     Ref
		wantRef string
		wantRev string
		version string
	}{
		{"branch main", Ref{Branch: "main"}, "refs/heads/main", c4, "main\n"},
		{"branch staging", Ref{Branch: "staging"}, "refs/heads/staging", c2, "1.1.0\n"},
		{"lightweight tag", Ref{Tag: "v1.0.0"}, "refs/tags/v1.0.0", c1, "1.0.0\n"},
		{"annotated tag", Ref{Tag: "v1.1.0"}, "refs/tags/v1.1.0", c2, "1.1.0\n"},
		{"semver highest in range", Ref{SemVer: ">=1.0.0 <2.0.0"}, "refs/tags/v1.1.0", c2, "1.1.0\n"},
		{"semver tilde", Ref{SemVer: "~1.0"}, "refs/tags/v1.0.0", c1, "1.0.0\n"},
		{"semver skips pre-releases", Ref{SemVer: ">=1.0.0"}, "refs/tags/v1.1.0", c2, "1.1.0\n"},
		{"semver pre-release when asked", Ref{SemVer: ">=2.0.0-rc.0"}, "refs/tags/v2.0.0-rc.1", c3, "2.0.0-rc.1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGit(t, GitOptions{URL: s.URL(repoName), Ref: tt.ref})
			got := mustFetch(t, g)
			if got.Ref != tt.wantRef || got.Revision != tt.wantRev {
				t.Errorf("Fetch resolved %s at %s, want %s at %s", got.Ref, got.Revision, tt.wantRef, tt.wantRev)
			}
			if diff := cmp.Diff(map[string]string{"version": tt.version}, readTree(t, got.Dir)); diff != "" {
				t.Errorf("snapshot files (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFetchUnchanged checks that a fetch finding the same commit only lists
// references, writes nothing, and says Unchanged.
func TestFetchUnchanged(t *testing.T) {
	t.Parallel()
	s2, w := newRepo(t, gitserver.Options{TLS: true, BearerToken: "tok-0123456789"})
	push(t, w, "one", map[string]string{"a.yaml": "a: 1\n"})
	cache := cacheDir(t)
	g := newGit(t, GitOptions{URL: s2.URL(repoName), Ref: Ref{Branch: "main"}, Auth: Auth{BearerToken: "tok-0123456789"}, CABundle: s2.CAPEM(), CacheDir: cache})
	first := mustFetch(t, g)
	before := treeState(t, cache)
	n := len(s2.Requests())

	for i := range 3 {
		again := mustFetch(t, g)
		want := *first
		want.Unchanged = true
		if diff := cmp.Diff(&want, again); diff != "" {
			t.Errorf("fetch %d (-want +got):\n%s", i+2, diff)
		}
	}
	if diff := cmp.Diff([]string{"GET git-upload-pack", "GET git-upload-pack", "GET git-upload-pack"}, requestsSince(s2, n)); diff != "" {
		t.Errorf("requests of unchanged fetches (-want +got):\n%s", diff)
	}
	if after := treeState(t, cache); after != before {
		t.Errorf("unchanged fetches changed the cache directory:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if last := g.Last(); last.Unchanged {
		t.Errorf("Last().Unchanged = true; Last describes the snapshot, not a fetch")
	}
}

// TestFetchIncremental measures that a fetch after a small change transfers
// only what changed, although every fetch is shallow.
func TestFetchIncremental(t *testing.T) {
	t.Parallel()
	s, w := newRepo(t, gitserver.Options{})
	var big strings.Builder
	for i := range 4000 { // 260 KB of hex, about 150 KB compressed
		fmt.Fprintf(&big, "%x\n", sha256.Sum256([]byte{byte(i), byte(i >> 8)}))
	}
	push(t, w, "big", map[string]string{"big.txt": big.String(), "small.yaml": "v: 1\n"})
	g := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}})

	packBytes := func() int64 {
		t.Helper()
		n := len(s.Requests())
		mustFetch(t, g)
		var total int64
		for _, r := range s.Requests()[n:] {
			if r.Method == "POST" {
				total += r.BytesOut
			}
		}
		return total
	}
	full := packBytes()
	push(t, w, "small", map[string]string{"small.yaml": "v: 2\n"})
	incremental := packBytes()
	t.Logf("first fetch received %d bytes; fetch after a one-line change received %d bytes", full, incremental)
	if full < 140_000 {
		t.Errorf("first fetch received %d bytes, want the whole tree, about 150 KB compressed", full)
	}
	if incremental > 2_000 {
		t.Errorf("fetch after a one-line change received %d bytes, want under 2000", incremental)
	}
	got := readTree(t, g.Last().Dir)
	if got["big.txt"] != big.String() || got["small.yaml"] != "v: 2\n" {
		t.Errorf("incremental snapshot holds small.yaml %q and big.txt of %d bytes; want v: 2 and %d bytes", got["small.yaml"], len(got["big.txt"]), big.Len())
	}
}

// TestFetchFollowsRewrites follows a force-pushed branch, a history replaced
// by an unrelated one, and a moved tag.
func TestFetchFollowsRewrites(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, w := newRepo(t, gitserver.Options{})
	c1 := push(t, w, "one", map[string]string{"a.yaml": "a: 1\n"})
	push(t, w, "two", map[string]string{"b.yaml": "b: 2\n"})
	branch := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}})
	mustFetch(t, branch)

	// Drop "two" and push a different commit in its place.
	gitCmd(t, w, "reset", "--hard", c1)
	c3, err := w.CommitFiles(ctx, "three", map[string]string{"c.yaml": "c: 3\n"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.ForcePush(ctx); err != nil {
		t.Fatal(err)
	}
	got := mustFetch(t, branch)
	if got.Revision != c3 || got.Unchanged {
		t.Fatalf("after a force-push Fetch returned %s (unchanged %v), want %s", got.Revision, got.Unchanged, c3)
	}
	if diff := cmp.Diff(map[string]string{"a.yaml": "a: 1\n", "c.yaml": "c: 3\n"}, readTree(t, got.Dir)); diff != "" {
		t.Errorf("snapshot after force-push (-want +got):\n%s", diff)
	}

	// Replace the whole history by an unrelated one.
	gitCmd(t, w, "checkout", "--orphan", "rewritten")
	gitCmd(t, w, "rm", "-r", "--quiet", "--cached", ".")
	if err := w.RemoveFiles("a.yaml", "c.yaml"); err != nil {
		t.Fatal(err)
	}
	c4, err := w.CommitFiles(ctx, "fresh start", map[string]string{"z.yaml": "z: 26\n"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.ForcePush(ctx, "HEAD:refs/heads/main"); err != nil {
		t.Fatal(err)
	}
	got = mustFetch(t, branch)
	if got.Revision != c4 {
		t.Fatalf("after a rewrite Fetch returned %s, want %s", got.Revision, c4)
	}
	if diff := cmp.Diff(map[string]string{"z.yaml": "z: 26\n"}, readTree(t, got.Dir)); diff != "" {
		t.Errorf("snapshot after rewrite (-want +got):\n%s", diff)
	}

	// A tag moved to another commit is followed too.
	gitCmd(t, w, "tag", "stable", c1)
	if err := w.Push(ctx, "refs/tags/stable"); err != nil {
		t.Fatal(err)
	}
	tag := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Tag: "stable"}})
	if got := mustFetch(t, tag); got.Revision != c1 {
		t.Fatalf("tag stable resolved to %s, want %s", got.Revision, c1)
	}
	gitCmd(t, w, "tag", "--force", "stable", c4)
	if err := w.ForcePush(ctx, "refs/tags/stable"); err != nil {
		t.Fatal(err)
	}
	if got := mustFetch(t, tag); got.Revision != c4 {
		t.Fatalf("moved tag stable resolved to %s, want %s", got.Revision, c4)
	}
}

// TestFetchErrors checks the kind and exact message of each failure, and
// that no credential appears in a message.
func TestFetchErrors(t *testing.T) {
	t.Parallel()
	basic, bw := newRepo(t, gitserver.Options{TLS: true, Username: "fleet", Password: "s3cret-pass"})
	push(t, bw, "one", map[string]string{"a": "1"})
	bearer, tw := newRepo(t, gitserver.Options{TLS: true, BearerToken: "tok-0123456789"})
	push(t, tw, "one", map[string]string{"a": "1"})
	open, ow := newRepo(t, gitserver.Options{})
	push(t, ow, "one", map[string]string{"a": "1"})
	if err := ow.Tag(t.Context(), "v0.1.0", ""); err != nil {
		t.Fatal(err)
	}
	if err := ow.Push(t.Context(), "refs/tags/v0.1.0"); err != nil {
		t.Fatal(err)
	}
	stopped := gitserver.New(t, gitserver.Options{})
	stoppedURL := stopped.URL(repoName)
	if err := stopped.Close(); err != nil {
		t.Fatal(err)
	}
	other := gitserver.New(t, gitserver.Options{TLS: true})

	main := Ref{Branch: "main"}
	tests := []struct {
		name      string
		opts      GitOptions
		kind      error
		transient bool
		want      string // exact message, or a prefix when ending in "..."
	}{
		{"wrong password", GitOptions{URL: basic.URL(repoName), Ref: main, CABundle: basic.CAPEM(), Auth: Auth{Username: "fleet", Password: "wrong-pass-42"}},
			ErrAuth, false, basic.URL(repoName) + ": list references: the server requires authentication (HTTP 401); check the credentials: the token, or the username and password"},
		{"no credentials", GitOptions{URL: basic.URL(repoName), Ref: main, CABundle: basic.CAPEM()},
			ErrAuth, false, basic.URL(repoName) + ": list references: the server requires authentication (HTTP 401); check the credentials: the token, or the username and password"},
		{"wrong token", GitOptions{URL: bearer.URL(repoName), Ref: main, CABundle: bearer.CAPEM(), Auth: Auth{BearerToken: "tok-wrong-9876"}},
			ErrAuth, false, bearer.URL(repoName) + ": list references: the server requires authentication (HTTP 401); check the credentials: the token, or the username and password"},
		{"missing repository", GitOptions{URL: open.URL("missing.git"), Ref: main},
			ErrRepositoryNotFound, false, open.URL("missing.git") + ": list references: repository not found; check the URL, and that the credentials may read the repository"},
		{"missing branch", GitOptions{URL: open.URL(repoName), Ref: Ref{Branch: "nope"}},
			ErrRefNotFound, false, open.URL(repoName) + `: branch "nope" not found; push the branch, or correct the branch name`},
		{"missing tag", GitOptions{URL: open.URL(repoName), Ref: Ref{Tag: "v9"}},
			ErrRefNotFound, false, open.URL(repoName) + `: tag "v9" not found; push the tag, or correct the tag name`},
		{"no tag in semver range", GitOptions{URL: open.URL(repoName), Ref: Ref{SemVer: "^1.0.0"}},
			ErrRefNotFound, false, open.URL(repoName) + `: no tag satisfies semver range "^1.0.0"; push a tag such as v1.2.3 within the range, or change the range`},
		{"untrusted certificate", GitOptions{URL: basic.URL(repoName), Ref: main, Auth: Auth{Username: "fleet", Password: "s3cret-pass"}},
			ErrServerIdentity, false, basic.URL(repoName) + ": list references: the server's TLS certificate is not trusted: Get \"" + basic.URL(repoName) + "/info/refs?service=git-upload-pack\": tls: failed to verify certificate: x509: certificate signed by unknown authority; if the server uses a private certificate authority, add its PEM certificate to the CA bundle"},
		{"certificate of another authority", GitOptions{URL: basic.URL(repoName), Ref: main, CABundle: other.CAPEM(), Auth: Auth{Username: "fleet", Password: "s3cret-pass"}},
			ErrServerIdentity, false, basic.URL(repoName) + ": list references: the server's TLS certificate is not trusted: ..."},
		{"server down", GitOptions{URL: stoppedURL, Ref: main},
			ErrTransient, true, stoppedURL + ": list references: network error: Get \"" + stoppedURL + "/info/refs?service=git-upload-pack\": dial tcp " + strings.TrimPrefix(stoppedURL[:strings.LastIndex(stoppedURL, "/")], "http://") + ": connect: connection refused; retrying"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cache := cacheDir(t)
			tt.opts.CacheDir = cache
			g := newGit(t, tt.opts)
			snap, err := g.Fetch(t.Context())
			if err == nil {
				t.Fatalf("Fetch returned %s, want an error", snap.Revision)
			}
			if prefix, ok := strings.CutSuffix(tt.want, "..."); ok {
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("error:\n%s\nwant prefix:\n%s", err, prefix)
				}
			} else if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(err, %v) = false", tt.kind)
			}
			if Transient(err) != tt.transient {
				t.Errorf("Transient(err) = %v, want %v", Transient(err), tt.transient)
			}
			for _, secret := range []string{"s3cret-pass", "wrong-pass-42", "tok-0123456789", "tok-wrong-9876"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a credential", err)
				}
			}
			if g.Last() != nil {
				t.Errorf("Last() = %+v after a failed first fetch, want nil", g.Last())
			}
			// A failed fetch writes no snapshot.
			for _, line := range strings.Split(treeState(t, cache), "\n") {
				if strings.HasPrefix(line, "snapshots/") {
					t.Errorf("a failed fetch wrote %s", line)
				}
			}
		})
	}
}

// TestSnapshotFiles checks that a snapshot is read-only, keeps executable
// bits and symbolic links, and leaves submodules out.
func TestSnapshotFiles(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, w := newRepo(t, gitserver.Options{})
	if err := w.WriteFiles(map[string]string{"a.yaml": "a: 1\n", "bin/run.sh": "#!/bin/sh\n"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(w.Dir(), "bin/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../a.yaml", filepath.Join(w.Dir(), "bin/link.yaml")); err != nil {
		t.Fatal(err)
	}
	first, err := w.Commit(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	gitCmd(t, w, "update-index", "--add", "--cacheinfo", "160000,"+first+",vendor/sub")
	gitCmd(t, w, "commit", "--quiet", "--message", "submodule")
	if err := w.Push(ctx); err != nil {
		t.Fatal(err)
	}

	snap := mustFetch(t, newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}}))
	wantFiles := map[string]string{"a.yaml": "a: 1\n", "bin/run.sh": "#!/bin/sh\n", "bin/link.yaml": "-> ../a.yaml"}
	if diff := cmp.Diff(wantFiles, readTree(t, snap.Dir)); diff != "" {
		t.Errorf("snapshot files (-want +got):\n%s", diff)
	}
	modes := map[string]os.FileMode{}
	for _, p := range []string{".", "a.yaml", "bin", "bin/run.sh", "vendor"} {
		info, err := os.Lstat(filepath.Join(snap.Dir, p))
		if err != nil {
			t.Fatal(err)
		}
		modes[p] = info.Mode()
	}
	wantModes := map[string]os.FileMode{
		".":          os.ModeDir | 0o555,
		"a.yaml":     0o444,
		"bin":        os.ModeDir | 0o555,
		"bin/run.sh": 0o555,
		"vendor":     os.ModeDir | 0o555,
	}
	if diff := cmp.Diff(wantModes, modes); diff != "" {
		t.Errorf("modes (-want +got):\n%s", diff)
	}
	if !filepath.IsAbs(snap.Dir) {
		t.Errorf("Dir %q is not absolute", snap.Dir)
	}
}

// TestRetention keeps the most recent snapshots and held ones, and nothing
// else.
func TestRetention(t *testing.T) {
	t.Parallel()
	s, w := newRepo(t, gitserver.Options{})
	cache := cacheDir(t)
	g := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}, CacheDir: cache, KeepSnapshots: 2})
	// Old snapshots are removed in the background; waitRemovals waits for them.
	listSnapshots := func(src *Git) []string {
		t.Helper()
		src.waitRemovals()
		entries, err := os.ReadDir(filepath.Join(cache, "snapshots"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	var revs []string
	fetchNew := func(i int) *Snapshot {
		t.Helper()
		push(t, w, fmt.Sprint("commit ", i), map[string]string{"n": fmt.Sprint(i)})
		snap := mustFetch(t, g)
		revs = append(revs, snap.Revision)
		return snap
	}
	first := fetchNew(1)
	release := g.Hold(first)
	fetchNew(2)
	fetchNew(3)
	if diff := cmp.Diff(sorted(revs[0], revs[1], revs[2]), listSnapshots(g)); diff != "" {
		t.Errorf("snapshots with the first held (-want +got):\n%s", diff)
	}
	release()
	release() // harmless
	fetchNew(4)
	if diff := cmp.Diff(sorted(revs[2], revs[3]), listSnapshots(g)); diff != "" {
		t.Errorf("snapshots after release (-want +got):\n%s", diff)
	}

	// A restarted source learns the snapshots on disk and keeps applying
	// the limit to them.
	g2 := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}, CacheDir: cache, KeepSnapshots: 2})
	push(t, w, "commit 5", map[string]string{"n": "5"})
	five := mustFetch(t, g2)
	if diff := cmp.Diff(sorted(revs[3], five.Revision), listSnapshots(g2)); diff != "" {
		t.Errorf("snapshots after a restart (-want +got):\n%s", diff)
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// TestRestartReusesCache checks that a new source on an existing cache
// directory returns the snapshot on disk without fetching objects or writing,
// and that a lost cached repository is rebuilt by a full fetch.
func TestRestartReusesCache(t *testing.T) {
	t.Parallel()
	s, w := newRepo(t, gitserver.Options{})
	push(t, w, "one", map[string]string{"a": "1"})
	cache := cacheDir(t)
	opts := GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}, CacheDir: cache}
	first := mustFetch(t, newGit(t, opts))

	// A crash left a half-written snapshot behind.
	leftover := filepath.Join(cache, "snapshots", ".tmp-0123456789ab-42")
	if err := os.MkdirAll(filepath.Join(leftover, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(leftover, 0o555); err != nil {
		t.Fatal(err)
	}
	g := newGit(t, opts)
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover temporary snapshot still there after NewGit (stat: %v)", err)
	}
	before := treeState(t, cache)
	n := len(s.Requests())
	again := mustFetch(t, g)
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("snapshot after restart (-first +again):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"GET git-upload-pack"}, requestsSince(s, n)); diff != "" {
		t.Errorf("requests after restart (-want +got):\n%s", diff)
	}
	if after := treeState(t, cache); after != before {
		t.Errorf("fetch after restart wrote to the cache:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// The cached repository is lost; the next revision is fetched whole.
	if err := removeTree(filepath.Join(cache, "repo")); err != nil {
		t.Fatal(err)
	}
	second := push(t, w, "two", map[string]string{"a": "2"})
	if got := mustFetch(t, g); got.Revision != second || readTree(t, got.Dir)["a"] != "2" {
		t.Errorf("after losing the cached repository Fetch returned %s with a=%q, want %s with a=2", got.Revision, readTree(t, got.Dir)["a"], second)
	}
}

// TestCompaction checks that compacting the cached repository leaves one pack
// and no loose objects, and that fetches stay incremental and correct.
func TestCompaction(t *testing.T) {
	t.Parallel()
	s, w := newRepo(t, gitserver.Options{})
	push(t, w, "one", map[string]string{"a": "1", "dir/b": "b"})
	cache := cacheDir(t)
	g := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}, CacheDir: cache})
	g.compactLoose = 0
	mustFetch(t, g)
	push(t, w, "two", map[string]string{"a": "2"})
	mustFetch(t, g)
	loose, packs := countObjects(filepath.Join(cache, "repo", "objects"))
	if loose != 0 || packs != 1 {
		t.Errorf("after compaction: %d loose objects and %d packs, want 0 and 1", loose, packs)
	}
	push(t, w, "three", map[string]string{"dir/b": "c"})
	n := len(s.Requests())
	got := mustFetch(t, g)
	if diff := cmp.Diff(map[string]string{"a": "2", "dir/b": "c"}, readTree(t, got.Dir)); diff != "" {
		t.Errorf("snapshot after compaction (-want +got):\n%s", diff)
	}
	for _, r := range s.Requests()[n:] {
		if r.Method == "POST" && r.BytesOut > 1000 {
			t.Errorf("fetch after compaction received %d bytes, want an incremental pack", r.BytesOut)
		}
	}
}

// TestConcurrentFetch runs fetches at once; they are serialised and only
// one transfers objects.
func TestConcurrentFetch(t *testing.T) {
	t.Parallel()
	s, w := newRepo(t, gitserver.Options{})
	head := push(t, w, "one", map[string]string{"a": "1"})
	g := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}})
	n := len(s.Requests())
	var wg sync.WaitGroup
	results := make([]string, 4)
	for i := range results {
		wg.Go(func() {
			snap, err := g.Fetch(t.Context())
			if err != nil {
				results[i] = err.Error()
				return
			}
			results[i] = snap.Revision
		})
	}
	wg.Wait()
	if diff := cmp.Diff([]string{head, head, head, head}, results); diff != "" {
		t.Errorf("concurrent fetches (-want +got):\n%s", diff)
	}
	want := []string{"GET git-upload-pack", "POST git-upload-pack", "GET git-upload-pack", "GET git-upload-pack", "GET git-upload-pack"}
	if diff := cmp.Diff(want, requestsSince(s, n)); diff != "" {
		t.Errorf("requests of concurrent fetches (-want +got):\n%s", diff)
	}
}

// TestFetchRefusesUnsafeTree checks that a commit whose tree holds a path no
// checkout should write is refused as an invalid revision, and nothing is
// written.
func TestFetchRefusesUnsafeTree(t *testing.T) {
	t.Parallel()
	s, w := newRepo(t, gitserver.Options{})
	push(t, w, "one", map[string]string{"a": "1"})
	blobFile := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(blobFile, []byte("[core]\n\tfsmonitor = evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	blob := gitCmd(t, w, "hash-object", "-w", blobFile)
	mktree := exec.CommandContext(t.Context(), "git", "mktree")
	mktree.Dir, mktree.Env = w.Dir(), s.GitEnv()
	mktree.Stdin = strings.NewReader("100644 blob " + blob + "\t.git\n")
	out, err := mktree.Output()
	if err != nil {
		t.Fatalf("git mktree: %v", err)
	}
	commit := gitCmd(t, w, "commit-tree", strings.TrimSpace(string(out)), "-m", "evil")
	if err := w.ForcePush(t.Context(), commit+":refs/heads/main"); err != nil {
		t.Fatal(err)
	}

	cache := cacheDir(t)
	g := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}, CacheDir: cache})
	_, err = g.Fetch(t.Context())
	want := s.URL(repoName) + ": commit " + commit + ` cannot be checked out: path ".git": invalid path component: ".git"; fix the offending path in a new commit`
	if err == nil || err.Error() != want {
		t.Fatalf("Fetch error:\n%v\nwant:\n%s", err, want)
	}
	if !errors.Is(err, ErrInvalidRevision) || Transient(err) {
		t.Errorf("errors.Is(err, ErrInvalidRevision) = %v, Transient = %v; want true, false", errors.Is(err, ErrInvalidRevision), Transient(err))
	}
	if entries, _ := os.ReadDir(filepath.Join(cache, "snapshots")); len(entries) != 0 {
		t.Errorf("snapshots/ holds %d entries after a refused tree, want none", len(entries))
	}
}

// TestSnapshotLoadsFleet pushes the example fleet and loads its snapshot the
// way the renderer does.
func TestSnapshotLoadsFleet(t *testing.T) {
	t.Parallel()
	s, w := newRepo(t, gitserver.Options{})
	if err := w.CopyTree(filepath.Join("..", "fleet-example")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(t.Context(), "the example fleet"); err != nil {
		t.Fatal(err)
	}
	if err := w.Push(t.Context()); err != nil {
		t.Fatal(err)
	}
	snap := mustFetch(t, newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}}))
	model, err := fleet.LoadDir(snap.Dir)
	if err != nil {
		t.Fatalf("fleet.LoadDir(snapshot): %v", err)
	}
	if len(model.Tenants) == 0 || len(model.Regions) == 0 {
		t.Errorf("loaded %d tenants and %d regions from the snapshot, want some of each", len(model.Tenants), len(model.Regions))
	}
}

// TestFetchRepairsMissingObjects removes an object from the cached
// repository behind the source's back: the next fetch notices while checking
// out and fetches the whole revision again.
func TestFetchRepairsMissingObjects(t *testing.T) {
	t.Parallel()
	s, w := newRepo(t, gitserver.Options{})
	push(t, w, "one", map[string]string{"a": "1", "b": "1"})
	cache := cacheDir(t)
	opts := GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}, CacheDir: cache}
	mustFetch(t, newGit(t, opts))
	second := push(t, w, "two", map[string]string{"b": "two"})
	snap := mustFetch(t, newGit(t, opts))

	// The incremental fetch stored the new blob as a loose object; lose it
	// and the snapshot, as an interrupted run might.
	blob := gitCmd(t, w, "rev-parse", "HEAD:b")
	if err := os.Remove(filepath.Join(cache, "repo", "objects", blob[:2], blob[2:])); err != nil {
		t.Fatal(err)
	}
	if err := removeTree(snap.Dir); err != nil {
		t.Fatal(err)
	}

	n := len(s.Requests())
	got := mustFetch(t, newGit(t, opts))
	if got.Revision != second || readTree(t, got.Dir)["b"] != "two" {
		t.Errorf("after losing an object Fetch returned %s with b=%q, want %s with b=two", got.Revision, readTree(t, got.Dir)["b"], second)
	}
	if diff := cmp.Diff([]string{"GET git-upload-pack", "GET git-upload-pack", "POST git-upload-pack"}, requestsSince(s, n)); diff != "" {
		t.Errorf("requests of the repairing fetch (-want +got):\n%s", diff)
	}
}
