package diff

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/fleetgen"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
)

const exampleDir = "../../fleet-example"

// renderDir loads and renders a fleet directory with the demo key.
func renderDir(t testing.TB, r *render.Renderer, dir, revision string) Revision {
	t.Helper()
	m, err := fleet.LoadDir(dir)
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	res, err := r.Render(context.Background(), render.Snapshot{Dir: dir, Revision: revision, Model: m}, render.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatalf("render %s: %v", revision, err)
	}
	return Revision{Name: revision, Model: m, Result: res}
}

func newRenderer(t testing.TB) *render.Renderer {
	t.Helper()
	charts, err := helm.New(helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.KeysFromFiles(filepath.Join(exampleDir, "demo-age-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return render.New(render.Options{Helm: charts, Decryptor: secrets.NewDecryptor(keys)})
}

// editAll replaces old with new in every file matching pattern under dir.
func editAll(t testing.TB, dir, pattern, old, new string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s under %s (%v)", pattern, dir, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(old)) {
			t.Fatalf("%s has no %q", f, old)
		}
		if err := os.WriteFile(f, bytes.ReplaceAll(data, []byte(old), []byte(new)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMarkdownTrimsABigChange changes every placement and namespace of a synthetic
// fleet (40 tenants × 3 regions × 2 apps): the comment stays under the limit, keeps
// its summary, and its closing note accounts for every diff and unit left out.
func TestMarkdownTrimsABigChange(t *testing.T) {
	spec := fleetgen.Spec{Tenants: 40, Regions: 3, Apps: 2, Example: exampleDir, Secrets: true}
	baseDir, headDir := t.TempDir(), t.TempDir()
	for _, dir := range []string{baseDir, headDir} {
		if err := fleetgen.Write(dir, spec); err != nil {
			t.Fatal(err)
		}
	}
	editAll(t, headDir, "fleet.yaml", "logFormat: json", "logFormat: text")
	editAll(t, headDir, "tenants/tenant-???.yaml", `pods: "50"`, `pods: "60"`)

	r := newRenderer(t)
	base := renderDir(t, r, baseDir, "base")
	head := renderDir(t, r, headDir, "head")
	report, err := Compare(base, head, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Every tenant's namespace and portal change in every region.
	if want := spec.Tenants * spec.Regions * 2; len(report.Units) != want {
		t.Fatalf("%d units changed, want %d", len(report.Units), want)
	}
	var full bytes.Buffer
	if err := Text(&full, report); err != nil {
		t.Fatal(err)
	}
	if full.Len() < MarkdownLimit+20000 {
		t.Fatalf("the change is only %d bytes as text; make it bigger for this test", full.Len())
	}

	for _, limit := range []int{MarkdownLimit, 20000} {
		var b bytes.Buffer
		if err := Markdown(&b, report, limit); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if len(out) > limit {
			t.Errorf("limit %d: comment is %d bytes", limit, len(out))
		}
		if !strings.Contains(out, headline(report)) || !strings.Contains(out, "| **40 tenants** |") {
			t.Errorf("limit %d: the summary is missing", limit)
		}
		if strings.Count(out, "<details>") != strings.Count(out, "</details>") {
			t.Errorf("limit %d: unbalanced <details>", limit)
		}

		// The note says how many diffs and units are left out; with what is shown
		// they must add up to the report.
		note := regexp.MustCompile(`\*\*Trimmed to fit a comment of \d+ characters\.\*\* (.*)`).FindStringSubmatch(out)
		if note == nil {
			t.Fatalf("limit %d: no trimming note:\n%s", limit, out[max(0, len(out)-500):])
		}
		diffsLeftOut := number(t, note[1], `(?i)the diffs of (\d+) objects? (are|is) left out`)
		unitsLeftOut := number(t, note[1], `(\d+) units? of tenants? `)
		unitsShown := strings.Count(out, "\n#### `")
		if unitsShown+unitsLeftOut != len(report.Units) {
			t.Errorf("limit %d: %d units shown + %d left out, want %d", limit, unitsShown, unitsLeftOut, len(report.Units))
		}
		diffsInShownUnits := 0
		for _, u := range report.Units[:unitsShown] {
			for _, o := range u.Objects {
				if o.Diff != "" {
					diffsInShownUnits++
				}
			}
		}
		if shown := strings.Count(out, "```diff\n"); shown+diffsLeftOut != diffsInShownUnits {
			t.Errorf("limit %d: %d diffs shown + %d left out, want %d in the units shown", limit, shown, diffsLeftOut, diffsInShownUnits)
		}
		if unitsLeftOut > 0 && !strings.Contains(note[1], report.Units[unitsShown].Tenant) {
			t.Errorf("limit %d: the note does not name the first tenant left out, %s: %s", limit, report.Units[unitsShown].Tenant, note[1])
		}
	}
}

// number returns the number the pattern's first group matches in s, or 0.
func number(t *testing.T, s, pattern string) int {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}
