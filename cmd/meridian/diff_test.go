package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"meridian.dev/meridian/internal/testenv/golden"
	"meridian.dev/meridian/internal/testenv/sopstest"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/review/diff"
)

// fleetRepo is a git repository holding a copy of fleet-example, committed with
// fixed names and dates so that its commit hashes are the same on every run.
type fleetRepo struct {
	t    *testing.T
	dir  string
	tick int
}

func newFleetRepo(t *testing.T) *fleetRepo {
	t.Helper()
	r := &fleetRepo{t: t, dir: filepath.Join(t.TempDir(), "fleet")}
	if err := os.CopyFS(r.dir, os.DirFS(example)); err != nil {
		t.Fatal(err)
	}
	r.git("init", "-q", "-b", "main")
	r.commit("The example fleet")
	return r
}

func (r *fleetRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir}, args...)...)
	date := time.Date(2026, 11, 1, 12, r.tick, 0, 0, time.UTC).Format(time.RFC3339)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Fleet Maintainer", "GIT_AUTHOR_EMAIL=fleet@example.com", "GIT_AUTHOR_DATE="+date,
		"GIT_COMMITTER_NAME=Fleet Maintainer", "GIT_COMMITTER_EMAIL=fleet@example.com", "GIT_COMMITTER_DATE="+date)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit commits every change of the work tree and returns the commit's hash.
func (r *fleetRepo) commit(message string) string {
	r.t.Helper()
	r.tick++
	r.git("add", "--all", ".")
	r.git("commit", "-q", "--allow-empty", "-m", message)
	return r.git("rev-parse", "HEAD")
}

func (r *fleetRepo) write(file, content string) {
	r.t.Helper()
	write(r.t, filepath.Join(r.dir, file), content)
}

// edit replaces old, which must be in the file, with new.
func (r *fleetRepo) edit(file, old, new string) {
	r.t.Helper()
	p := filepath.Join(r.dir, file)
	data, err := os.ReadFile(p)
	if err != nil {
		r.t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		r.t.Fatalf("%s has no %q", file, old)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *fleetRepo) remove(file string) {
	r.t.Helper()
	if err := os.Remove(filepath.Join(r.dir, file)); err != nil {
		r.t.Fatal(err)
	}
}

// diffRun is the outcome of one meridian diff.
type diffRun struct {
	stdout, stderr string
	err            error
}

// code is the exit status main would give.
func (d diffRun) code() int {
	var exit exitError
	switch {
	case errors.As(d.err, &exit):
		return exit.code
	case d.err != nil:
		return 1
	}
	return 0
}

// runDiffTest runs meridian diff with the demo key and nothing from the environment,
// and checks that it left nothing in the temporary directory.
func runDiffTest(t *testing.T, o diffOptions) diffRun {
	t.Helper()
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", "")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	key, err := filepath.Abs(filepath.Join(example, "demo-age-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	o.keyFiles = []string{key}
	if o.chartCache == "" {
		o.chartCache = filepath.Join(t.TempDir(), "charts")
	}
	if o.format == "" {
		o.format = "text"
	}
	if o.markdownLimit == 0 {
		o.markdownLimit = diff.MarkdownLimit
	}
	if o.fleetPath == "" {
		o.fleetPath = "."
	}
	var stdout, stderr bytes.Buffer
	err = runDiff(context.Background(), &stdout, &stderr, o)
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("diff left %d entries in the temporary directory, such as %s", len(left), left[0].Name())
	}
	return diffRun{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// formats are every output format, with its golden file extension.
var formats = []struct{ name, ext string }{{"text", "txt"}, {"markdown", "md"}, {"json", "json"}}

// TestDiffGolden compares every format of three changes to fleet-example with golden
// files under testdata/diff (go test -run TestDiffGolden -update rewrites them).
// Commit hashes are replaced by BASE and HEAD, so that a change to fleet-example
// that does not touch these units does not change the files.
func TestDiffGolden(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *fleetRepo)
	}{{
		name: "new-tenant",
		change: func(r *fleetRepo) {
			r.write("tenants/harbour-ops.yaml", `# Harbour operations: berth planning for one port authority.
apiVersion: meridian.dev/v1alpha1
kind: Tenant
metadata:
  name: harbour-ops
spec:
  regions: [eu-west-2]
  quota:
    hard:
      requests.cpu: "1"
      pods: "10"
  apps:
    - name: api
`)
		},
	}, {
		name: "region-value",
		change: func(r *fleetRepo) {
			r.edit("tenants/trucking.yaml", "        ap-northeast-2:              # a smaller market: fewer replicas\n          replicas: 1",
				"        ap-northeast-2:              # a smaller market: fewer replicas\n          replicas: 2")
		},
	}, {
		name: "app-removed",
		change: func(r *fleetRepo) {
			r.edit("tenants/trucking.yaml", "    - name: worker\n      values:\n        queue:\n          url: amqp://queue.trucking.internal:5672/dispatch\n", "")
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := newFleetRepo(t)
			base := repo.git("rev-parse", "HEAD")
			tt.change(repo)
			head := repo.commit(tt.name)
			for _, f := range formats {
				got := runDiffTest(t, diffOptions{repo: repo.dir, base: base, head: head, format: f.name})
				if got.code() != 2 {
					t.Fatalf("%s: exit status %d (%v), want 2\n%s", f.name, got.code(), got.err, got.stderr)
				}
				out := strings.NewReplacer(base, "BASE", head, "HEAD", base[:12], "BASE", head[:12], "HEAD").Replace(got.stdout)
				golden.Check(t, filepath.Join("testdata", "diff", tt.name+"."+f.ext), []byte(out))
				if f.name == "json" {
					var report diff.Report
					if err := json.Unmarshal([]byte(got.stdout), &report); err != nil {
						t.Errorf("json output does not parse: %v", err)
					}
				}
				assertNoSecrets(t, repo, []string{base, head}, got)
			}
		})
	}
}

// TestDiffSecretChanged rotates a tenant's encrypted database password: the Secret
// of each of the tenant's portals reads "password: changed", and neither value
// appears in any format.
func TestDiffSecretChanged(t *testing.T) {
	repo := newFleetRepo(t)
	base := repo.git("rev-parse", "HEAD")
	repo.write("tenants/trucking.secrets.sops.yaml", string(encryptForDemoKey(t, "portal:\n  database:\n    password: rotated-demo-password-5c2b91\n")))
	head := repo.commit("Rotate trucking's database password")
	for _, f := range formats {
		got := runDiffTest(t, diffOptions{repo: repo.dir, base: base, head: head, format: f.name})
		if got.code() != 2 {
			t.Fatalf("%s: exit status %d (%v), want 2\n%s", f.name, got.code(), got.err, got.stderr)
		}
		assertNoSecrets(t, repo, []string{base, head}, got)
		if f.name != "json" {
			continue
		}
		var report diff.Report
		if err := json.Unmarshal([]byte(got.stdout), &report); err != nil {
			t.Fatal(err)
		}
		var changed []string
		for _, u := range report.Units {
			for _, o := range u.Objects {
				if o.Kind != "Secret" {
					continue
				}
				if o.Diff != "" {
					t.Errorf("%s: %s shows a diff, want only its keys:\n%s", u.ID, o.Ref, o.Diff)
				}
				for _, k := range o.SecretKeys {
					changed = append(changed, u.ID.String()+" "+o.Ref+" "+k.Key+": "+string(k.Change))
				}
			}
		}
		want := []string{
			"trucking/ap-northeast-2/portal Secret/trucking/portal-database password: changed",
			"trucking/eu-west-2/portal Secret/trucking/portal-database password: changed",
			"trucking/us-east-1/portal Secret/trucking/portal-database password: changed",
		}
		if strings.Join(changed, "\n") != strings.Join(want, "\n") {
			t.Errorf("secret keys:\n%s\nwant:\n%s", strings.Join(changed, "\n"), strings.Join(want, "\n"))
		}
	}
}

// encryptForDemoKey encrypts plain YAML for fleet-example's demo age key, as
// `sops --encrypt` would, in memory.
func encryptForDemoKey(t *testing.T, plain string) []byte {
	t.Helper()
	return sopstest.Encrypt(t, filepath.Join(example, "demo-age-key.txt"), plain)
}

// assertNoSecrets decrypts every secrets file of the revisions with the demo key
// and fails if any decrypted value, or its base64 form, is in the run's output.
func assertNoSecrets(t *testing.T, repo *fleetRepo, revisions []string, got diffRun) {
	t.Helper()
	files := map[string][]byte{}
	for _, rev := range revisions {
		for _, file := range strings.Fields(repo.git("ls-tree", "-r", "--name-only", rev, "tenants/")) {
			if strings.HasSuffix(file, ".secrets.sops.yaml") {
				files[rev+":"+file] = []byte(repo.git("show", rev+":"+file))
			}
		}
	}
	values := sopstest.Values(t, filepath.Join(example, "demo-age-key.txt"), files)
	if len(values) < 2 {
		t.Fatalf("only %d decrypted values to look for", len(values))
	}
	output := got.stdout + got.stderr
	if got.err != nil {
		output += got.err.Error()
	}
	for _, hit := range sopstest.Find(values, map[string][]byte{"diff output": []byte(output)}) {
		t.Errorf("a decrypted value of the secrets files is in the %s", hit)
	}
}

// TestDiffExitCodes: 0 without changes, 2 with changes, 1 with an error and nothing
// on standard output.
func TestDiffExitCodes(t *testing.T) {
	repo := newFleetRepo(t)
	first := repo.git("rev-parse", "HEAD")
	repo.edit("README.md", "", "A note for people; no fleet file changes.\n\n")
	docsOnly := repo.commit("Explain the fleet")
	repo.edit("tenants/logistics-eu.yaml", `pods: "20"`, `pods: "25"`)
	quota := repo.commit("More pods for logistics-eu")
	repo.write("apps/portal/chart/templates/broken.yaml", "{{ .Values.missing.field }}\n")
	broken := repo.commit("A template that fails")
	repo.remove("apps/portal/chart/templates/broken.yaml")
	repo.edit("tenants/trucking.yaml", "  regions: [us-east-1", "  regoins: [us-east-1")
	invalid := repo.commit("A typo")

	tests := []struct {
		name       string
		base, head string
		want       int
		wantErr    []string // in standard error and the returned error
	}{
		{name: "the same revision", base: first, head: first, want: 0},
		{name: "a commit that changes no rendered object", base: first, head: docsOnly, want: 0},
		{name: "a changed quota", base: first, head: quota, want: 2},
		{name: "a template error names the unit and the file", base: quota, head: broken, want: 1,
			wantErr: []string{"head " + broken[:12] + ": charging-stations-ca/us-east-1/portal: ", "broken.yaml"}},
		{name: "an invalid fleet names the file and line", base: quota, head: invalid, want: 1,
			wantErr: []string{"head " + invalid[:12] + ": tenants/trucking.yaml:7: spec.regoins: unknown field", "not valid"}},
		{name: "an unknown revision", base: "no-such-branch", head: quota, want: 1, wantErr: []string{"--base no-such-branch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runDiffTest(t, diffOptions{repo: repo.dir, base: tt.base, head: tt.head})
			if got.code() != tt.want {
				t.Fatalf("exit status %d (%v), want %d\n%s", got.code(), got.err, tt.want, got.stderr)
			}
			if tt.want == 1 && got.stdout != "" {
				t.Errorf("an error printed a diff:\n%s", got.stdout)
			}
			errText := got.stderr
			if got.err != nil {
				errText += got.err.Error()
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(errText, want) {
					t.Errorf("errors do not say %q:\n%s", want, errText)
				}
			}
			if tt.want == 0 && !strings.Contains(got.stdout, "No changes") {
				t.Errorf("output does not say there are no changes:\n%s", got.stdout)
			}
		})
	}
	if status := repo.git("status", "--porcelain"); status != "" {
		t.Errorf("the repository was changed:\n%s", status)
	}
	if out := repo.git("worktree", "list"); strings.Count(out, "\n") > 0 {
		t.Errorf("worktrees left behind:\n%s", out)
	}
}

// TestDiffMassDeletion removes a tenant: its namespace leaves us-east-1, which the
// guard holds, unless the head commit carries the allowing trailer.
func TestDiffMassDeletion(t *testing.T) {
	repo := newFleetRepo(t)
	base := repo.git("rev-parse", "HEAD")
	repo.remove("tenants/charging-stations-ca.yaml")
	repo.remove("tenants/charging-stations-ca.secrets.sops.yaml")
	held := repo.commit("Remove the charging-stations-ca tenant")
	allowed := repo.commit("Remove the charging-stations-ca tenant\n\nMeridian-Allow-Mass-Deletion: true")

	for _, tt := range []struct {
		head                 string
		wantHeld, wantAllowd bool
	}{{held, true, false}, {allowed, false, true}} {
		got := runDiffTest(t, diffOptions{repo: repo.dir, base: base, head: tt.head, format: "json"})
		if got.code() != 2 {
			t.Fatalf("exit status %d (%v), want 2\n%s", got.code(), got.err, got.stderr)
		}
		var report diff.Report
		if err := json.Unmarshal([]byte(got.stdout), &report); err != nil {
			t.Fatal(err)
		}
		if len(report.Guard) != 1 || report.Guard[0].Region != "us-east-1" {
			t.Fatalf("guard: %+v, want us-east-1 only", report.Guard)
		}
		g := report.Guard[0]
		if g.Held != tt.wantHeld || g.AllowedByTrailer != tt.wantAllowd || !strings.Contains(g.Reason, "deletes tenant namespace charging-stations-ca/us-east-1") {
			t.Errorf("guard: %+v, want held=%v allowedByTrailer=%v with the namespace as reason", g, tt.wantHeld, tt.wantAllowd)
		}
		if want := tt.wantHeld; (len(report.Summary.HeldRegions) == 1) != want {
			t.Errorf("summary held regions: %v", report.Summary.HeldRegions)
		}
	}
}

// TestDiffFilter narrows the comparison to one region; an unknown tenant is an error.
func TestDiffFilter(t *testing.T) {
	repo := newFleetRepo(t)
	base := repo.git("rev-parse", "HEAD")
	repo.edit("tenants/trucking.yaml", "        replicas: 3", "        replicas: 4")
	head := repo.commit("More portal replicas")

	got := runDiffTest(t, diffOptions{repo: repo.dir, base: base, head: head, format: "json", filter: render.Filter{Region: "eu-west-2"}})
	if got.code() != 2 {
		t.Fatalf("exit status %d (%v), want 2", got.code(), got.err)
	}
	var report diff.Report
	if err := json.Unmarshal([]byte(got.stdout), &report); err != nil {
		t.Fatal(err)
	}
	if len(report.Units) != 1 || report.Units[0].ID.String() != "trucking/eu-west-2/portal" {
		t.Errorf("units: %+v, want trucking/eu-west-2/portal only", report.Units)
	}

	got = runDiffTest(t, diffOptions{repo: repo.dir, base: base, head: head, filter: render.Filter{Tenant: "nobody"}})
	if got.code() != 1 || !strings.Contains(got.err.Error(), "--tenant nobody: no such tenant") {
		t.Errorf("unknown tenant: exit %d, %v", got.code(), got.err)
	}
}
