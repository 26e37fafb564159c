package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"meridian.dev/meridian/review/diff"
)

// TestNoKeySaysHowToGiveIt runs diff and render of fleet-example without its
// SOPS key, as README's commands would without SOPS_AGE_KEY_FILE: each
// secrets file is one error naming how many units it stopped, and one line
// says how to give the key, instead of an error per unit.
func TestNoKeySaysHowToGiveIt(t *testing.T) {
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", "")
	t.Setenv("TMPDIR", t.TempDir())
	repo := newFleetRepo(t)
	base := repo.git("rev-parse", "HEAD")
	repo.edit("tenants/logistics-eu.yaml", `pods: "20"`, `pods: "25"`)
	head := repo.commit("More pods for logistics-eu")
	cache := filepath.Join(t.TempDir(), "charts")

	var stdout, diffErr bytes.Buffer
	err := runDiff(context.Background(), &stdout, &diffErr, diffOptions{
		repo: repo.dir, fleetPath: ".", base: base, head: head, format: "text", markdownLimit: diff.MarkdownLimit, chartCache: cache,
	})
	var exit exitError
	if !errors.As(err, &exit) || exit.code != 1 {
		t.Fatalf("diff without a key: %v, want exit status 1", err)
	}
	var renderErr bytes.Buffer
	err = runRender(context.Background(), &bytes.Buffer{}, &renderErr, renderOptions{fleetDir: example, chartCache: cache})
	if !errors.As(err, &exit) || exit.code != 1 {
		t.Fatalf("render without a key: %v, want exit status 1", err)
	}
	hint := "Give the SOPS key that opens them with --key-file FILE or SOPS_AGE_KEY_FILE=FILE (the demo fleet's is fleet-example/demo-age-key.txt)."
	trucking := "tenants/trucking.secrets.sops.yaml: no configured key can decrypt it"
	for _, tt := range []struct {
		name, stderr string
		prefixes     []string
	}{
		{"diff", diffErr.String(), []string{"base " + base[:12] + ": ", "head " + head[:12] + ": "}},
		{"render", renderErr.String(), []string{""}},
	} {
		lines := strings.Split(strings.TrimSpace(tt.stderr), "\n")
		// Two secrets files (charging-stations-ca's, trucking's) per revision, and the hint.
		if want := 2*len(tt.prefixes) + 1; len(lines) != want {
			t.Errorf("%s: %d lines of errors, want %d:\n%s", tt.name, len(lines), want, tt.stderr)
		}
		if lines[len(lines)-1] != hint || strings.Count(tt.stderr, hint) != 1 {
			t.Errorf("%s: the errors do not end with the hint once:\n%s", tt.name, tt.stderr)
		}
		for _, p := range tt.prefixes {
			want := "Error: " + p + trucking
			if !strings.Contains(tt.stderr, want) || !strings.Contains(tt.stderr, "(9 units: trucking/ap-northeast-2/api, trucking/ap-northeast-2/portal, trucking/ap-northeast-2/worker and 6 more)") {
				t.Errorf("%s: no line %q… naming trucking's 9 units:\n%s", tt.name, want, tt.stderr)
			}
		}
	}
}
