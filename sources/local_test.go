package sources

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// localRepo is a git repository in a temporary directory, as a person or a CI
// job has it checked out, committed with fixed names and dates.
type localRepo struct {
	t    *testing.T
	dir  string
	tick int
}

func newLocalRepo(t *testing.T) *localRepo {
	t.Helper()
	r := &localRepo{t: t, dir: filepath.Join(t.TempDir(), "repo")}
	if err := os.Mkdir(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.git("init", "-q", "-b", "main")
	return r
}

// authorDate is when the commits of a localRepo are written, in a time zone
// other than UTC so that a lost zone shows.
var authorDate = time.Date(2026, 11, 1, 12, 0, 0, 0, time.FixedZone("", 9*60*60))

// git runs git in the repository with no configuration but fixed names and
// dates, and returns its output.
func (r *localRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir}, args...)...)
	date := authorDate.Add(time.Duration(r.tick) * time.Minute).Format(time.RFC3339)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Fleet Maintainer", "GIT_AUTHOR_EMAIL=fleet@example.com", "GIT_AUTHOR_DATE="+date,
		"GIT_COMMITTER_NAME=Release Bot", "GIT_COMMITTER_EMAIL=bot@example.com", "GIT_COMMITTER_DATE="+date)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (an empty content removes the file), commits every
// change of the work tree and returns the commit's hash.
func (r *localRepo) commit(message string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.tick++
	r.git("add", "--all", ".")
	r.git("commit", "-q", "--allow-empty", "-m", message)
	return r.git("rev-parse", "HEAD")
}

// TestLocalPath turns paths relative to the directory a command was given into
// paths relative to the top of the repository, and refuses those that leave it.
func TestLocalPath(t *testing.T) {
	repo := newLocalRepo(t)
	repo.commit("A fleet in a directory", map[string]string{"fleet/fleet.yaml": "kind: Fleet\n", "docs/README.md": "docs\n"})
	tests := []struct {
		name, dir, rel string
		want           string // or the error
		wantErr        bool
	}{
		{name: "the whole repository", dir: ".", rel: ".", want: "."},
		{name: "a directory from the top", dir: ".", rel: "fleet", want: "fleet"},
		{name: "a directory from inside it", dir: "fleet", rel: ".", want: "fleet"},
		{name: "a sibling directory", dir: "fleet", rel: "../docs", want: "docs"},
		{name: "up to the top", dir: "fleet", rel: "..", want: "."},
		{name: "out of the top", dir: ".", rel: "..", wantErr: true},
		{name: "out from inside", dir: "fleet", rel: "../../elsewhere", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := OpenLocal(t.Context(), filepath.Join(repo.dir, tt.dir))
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Path(tt.rel)
			if tt.wantErr {
				if err == nil || err.Error() != "outside the repository" {
					t.Errorf("Path(%q) = %q, %v; want the error outside the repository", tt.rel, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Path(%q) = %q, %v; want %q", tt.rel, got, err, tt.want)
			}
		})
	}
}

// TestOpenLocalNotARepository names the problem in git's words.
func TestOpenLocalNotARepository(t *testing.T) {
	_, err := OpenLocal(t.Context(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "not a git repository") {
		t.Errorf("error = %v, want git's not a git repository", err)
	}
}

// TestLocalCheckout writes the files of a revision, named in git's syntax,
// below a path into a new directory, with the commit's metadata.
func TestLocalCheckout(t *testing.T) {
	repo := newLocalRepo(t)
	first := repo.commit("The example fleet", map[string]string{
		"fleet/fleet.yaml":            "kind: Fleet\n",
		"fleet/tenants/trucking.yaml": "kind: Tenant\nreplicas: 1\n",
		"README.md":                   "not the fleet\n",
	})
	repo.git("tag", "v1")
	if err := os.Symlink("../fleet.yaml", filepath.Join(repo.dir, "fleet", "tenants", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	second := repo.commit("More replicas for trucking\n\nThe ramp-up starts on Monday.\n\nMeridian-Allow-Mass-Deletion: true\n",
		map[string]string{"fleet/tenants/trucking.yaml": "kind: Tenant\nreplicas: 3\n"})
	// Uncommitted changes are not read.
	if err := os.WriteFile(filepath.Join(repo.dir, "fleet", "fleet.yaml"), []byte("edited, not committed\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	firstFleet := map[string]string{"fleet.yaml": "kind: Fleet\n", "tenants/trucking.yaml": "kind: Tenant\nreplicas: 1\n"}
	secondFleet := map[string]string{"fleet.yaml": "kind: Fleet\n", "tenants/trucking.yaml": "kind: Tenant\nreplicas: 3\n", "tenants/link.yaml": "-> ../fleet.yaml"}
	tests := []struct {
		name, rev, path string
		wantRevision    string
		wantFiles       map[string]string
		wantSubject     string
		wantBody        string
	}{
		{name: "HEAD", rev: "HEAD", path: "fleet", wantRevision: second, wantFiles: secondFleet,
			wantSubject: "More replicas for trucking", wantBody: "The ramp-up starts on Monday.\n\nMeridian-Allow-Mass-Deletion: true"},
		{name: "a relative revision", rev: "HEAD~1", path: "fleet", wantRevision: first, wantFiles: firstFleet, wantSubject: "The example fleet"},
		{name: "a branch", rev: "main", path: "fleet", wantRevision: second, wantFiles: secondFleet,
			wantSubject: "More replicas for trucking", wantBody: "The ramp-up starts on Monday.\n\nMeridian-Allow-Mass-Deletion: true"},
		{name: "a tag", rev: "v1", path: "fleet", wantRevision: first, wantFiles: firstFleet, wantSubject: "The example fleet"},
		{name: "an abbreviated hash", rev: first[:8], path: "fleet", wantRevision: first, wantFiles: firstFleet, wantSubject: "The example fleet"},
		{name: "a subdirectory", rev: first, path: "fleet/tenants", wantRevision: first,
			wantFiles: map[string]string{"trucking.yaml": "kind: Tenant\nreplicas: 1\n"}, wantSubject: "The example fleet"},
		{name: "the whole repository", rev: first, path: ".", wantRevision: first,
			wantFiles:   map[string]string{"README.md": "not the fleet\n", "fleet/fleet.yaml": "kind: Fleet\n", "fleet/tenants/trucking.yaml": "kind: Tenant\nreplicas: 1\n"},
			wantSubject: "The example fleet"},
	}
	r, err := OpenLocal(t.Context(), repo.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "checkout")
			s, err := r.Checkout(t.Context(), tt.rev, tt.path, dest)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dest, filepath.FromSlash(tt.path)); s.Dir != want {
				t.Errorf("Dir = %s, want %s", s.Dir, want)
			}
			if s.Revision != tt.wantRevision {
				t.Errorf("Revision = %s, want %s", s.Revision, tt.wantRevision)
			}
			if diff := cmp.Diff(tt.wantFiles, readTree(t, s.Dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			tick := 1
			if tt.wantRevision == second {
				tick = 2
			}
			when := authorDate.Add(time.Duration(tick) * time.Minute)
			want := Commit{
				Author:    Person{Name: "Fleet Maintainer", Email: "fleet@example.com", When: when},
				Committer: Person{Name: "Release Bot", Email: "bot@example.com", When: when},
				Subject:   tt.wantSubject,
				Body:      tt.wantBody,
			}
			if diff := cmp.Diff(want, s.Commit); diff != "" {
				t.Errorf("commit (-want +got):\n%s", diff)
			}
			if _, offset := s.Commit.Author.When.Zone(); offset != 9*60*60 {
				t.Errorf("author date in zone offset %ds, want the recorded +09:00", offset)
			}
		})
	}
	if status := repo.git("status", "--porcelain"); status != "M fleet/fleet.yaml" { // " M", trimmed
		t.Errorf("the work tree changed; status:\n%s", status)
	}
	if head := repo.git("rev-parse", "HEAD"); head != second {
		t.Errorf("HEAD moved to %s", head)
	}
}

// TestLocalCheckoutErrors says which revision or path is wrong, and writes
// nothing into a directory that exists.
func TestLocalCheckoutErrors(t *testing.T) {
	repo := newLocalRepo(t)
	head := repo.commit("The example fleet", map[string]string{"fleet/fleet.yaml": "kind: Fleet\n"})
	blob := repo.git("rev-parse", "HEAD:fleet/fleet.yaml")
	existing := t.TempDir()
	tests := []struct {
		name, rev, path, dest string
		want                  string
	}{
		{name: "an unknown revision", rev: "no-such-branch", path: "fleet", want: "git rev-parse: fatal: Needed a single revision"},
		{name: "an option for a revision", rev: "--all", path: "fleet", want: "not a revision"},
		{name: "a blob for a revision", rev: blob, path: "fleet", want: "git rev-parse: "},
		{name: "a path the commit lacks", rev: head, path: "apps", want: "git archive: fatal: pathspec 'apps' did not match any files"},
		{name: "a file for a directory", rev: head, path: "fleet/fleet.yaml", want: "commit " + head[:12] + " has no directory fleet/fleet.yaml"},
		{name: "a destination that exists", rev: head, path: "fleet", dest: existing, want: "file exists"},
	}
	r, err := OpenLocal(t.Context(), repo.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := tt.dest
			if dest == "" {
				dest = filepath.Join(t.TempDir(), "checkout")
			}
			s, err := r.Checkout(t.Context(), tt.rev, tt.path, dest)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Checkout = %+v, %v; want an error containing %q", s, err, tt.want)
			}
		})
	}
	if left, _ := os.ReadDir(existing); len(left) > 0 {
		t.Errorf("wrote %d entries into an existing directory", len(left))
	}
}

// TestLocalCheckoutWorktree reads a linked worktree with per-worktree
// configuration, which go-git refuses to open: the reason LocalRepository runs
// git.
func TestLocalCheckoutWorktree(t *testing.T) {
	repo := newLocalRepo(t)
	head := repo.commit("The example fleet", map[string]string{"fleet/fleet.yaml": "kind: Fleet\n"})
	linked := filepath.Join(t.TempDir(), "linked")
	repo.git("worktree", "add", "-q", "--detach", linked, head)
	repo.git("config", "extensions.worktreeConfig", "true")
	repo.git("-C", linked, "config", "--worktree", "core.sparseCheckout", "false")

	r, err := OpenLocal(t.Context(), filepath.Join(linked, "fleet"))
	if err != nil {
		t.Fatal(err)
	}
	fleetPath, err := r.Path(".")
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Checkout(t.Context(), "HEAD", fleetPath, filepath.Join(t.TempDir(), "checkout"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"fleet.yaml": "kind: Fleet\n"}, readTree(t, s.Dir)); diff != "" || s.Revision != head {
		t.Errorf("revision %s, want %s; files (-want +got):\n%s", s.Revision, head, diff)
	}
}
