// Package conformance checks that Meridian renders real public Helm charts and
// Kustomize trees object for object as `helm template` and `kustomize build`
// do. It holds tests only and is never linked into Meridian.
//
// The charts and trees come from the Go modules of their projects at pinned
// versions (cases_test.go), through the module cache. Meridian renders them
// the way the daemon does: from a fleet repository written in a temporary
// directory, with one App per chart or tree. helm and kustomize are built by
// internal/gotool from the versions of the libraries Meridian's go.mod pins, and
// cached outside the checkout. See docs/render.md, "Conformance with Helm and
// Kustomize".
package conformance

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
)

// revision is the snapshot's revision, written on every object Meridian renders.
const revision = "0123456789abcdef0123456789abcdef01234567"

// TestConformance renders every chart and tree of cases_test.go with Meridian
// and with helm template or kustomize build and compares the objects. It needs
// the module proxy (or a warm module cache) and builds helm and kustomize the
// first time, so it is skipped with the other slow tests when
// MERIDIAN_SKIP_TESTBED=1.
func TestConformance(t *testing.T) {
	if os.Getenv(testbed.EnvSkip) == "1" {
		t.Skipf("conformance: %s=1", testbed.EnvSkip)
	}
	ctx := context.Background()
	e := newEnv(t, ctx)

	dir := t.TempDir()
	e.writeFleet(t, ctx, dir)
	m, err := fleet.LoadDir(dir)
	if err != nil {
		t.Fatalf("the suite's fleet does not load: %v", err)
	}
	snap := render.Snapshot{Dir: dir, Revision: revision, Model: m}
	helmRenderer, err := helm.New(helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r := render.New(render.Options{Helm: helmRenderer})
	// HELM_* keep the user's helm configuration and repositories out of it.
	helmEnv := []string{"HELM_CACHE_HOME=" + t.TempDir(), "HELM_CONFIG_HOME=" + t.TempDir(), "HELM_DATA_HOME=" + t.TempDir()}

	for _, c := range charts {
		t.Run("helm/"+c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			u, renderErr := renderApp(t, ctx, r, snap, c.name)
			valuesFile := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(valuesFile, []byte(c.values), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := runCLI(ctx, e.helm, helmEnv, "template", c.name, filepath.Join(dir, "apps", c.name, "chart"),
				"--namespace", tenant, "--kube-version", helm.DefaultKubeVersion, "--include-crds", "--values", valuesFile)
			if err != nil {
				t.Fatal(err)
			}
			upstream, err := parseManifests(out)
			if err != nil {
				t.Fatalf("helm template output: %v", err)
			}
			if c.refused != nil {
				checkRefused(t, c, renderErr, upstream)
				return
			}
			if renderErr != nil {
				t.Fatalf("Meridian does not render the chart, helm does:\n%v", renderErr)
			}
			report(t, c.name, "helm", c.covers, compare("helm", upstream, meridianObjects(u), u.ID(), revision))
			t.Logf("%d objects from helm, %d from Meridian, in %s", len(upstream), len(meridianObjects(u)), time.Since(start).Round(10*time.Millisecond))
		})
	}
	for _, c := range trees {
		t.Run("kustomize/"+c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			u, renderErr := renderApp(t, ctx, r, snap, c.name)
			path := "tree"
			if c.overlay != "" {
				path = "overlay"
			}
			out, err := runCLI(ctx, e.kustomize, nil, "build", filepath.Join(dir, "apps", c.name, path))
			if err != nil {
				t.Fatal(err)
			}
			upstream, err := parseManifests(out)
			if err != nil {
				t.Fatalf("kustomize build output: %v", err)
			}
			if renderErr != nil {
				t.Fatalf("Meridian does not build the tree, kustomize does:\n%v", renderErr)
			}
			report(t, c.name, "kustomize", c.covers, compare("kustomize", upstream, meridianObjects(u), u.ID(), revision))
			t.Logf("%d objects from kustomize, %d from Meridian, in %s", len(upstream), len(meridianObjects(u)), time.Since(start).Round(10*time.Millisecond))
		})
	}
}

// renderApp renders one app's placement with Meridian; each app on its own,
// because charts and trees of one project render the same objects, which two
// units of a region may not.
func renderApp(t *testing.T, ctx context.Context, r *render.Renderer, snap render.Snapshot, app string) (*render.Unit, error) {
	t.Helper()
	res, err := r.Render(ctx, snap, render.Filter{App: app})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	for _, u := range res.Units {
		if u.App == app {
			return u, nil
		}
	}
	t.Fatalf("Meridian rendered no unit for app %s", app)
	return nil, nil
}

// knownDifference is a difference between Meridian and helm or kustomize that
// Meridian does not document, found by this suite and not fixed yet.
type knownDifference struct {
	// app is the case, object and field the difference as compare names it.
	app, object, field string
	// why says what differs and whose bug it is.
	why string
}

// knownDifferences are logged, not failed on; one that is no longer seen fails
// its case, so that the entry goes when the difference is fixed. Add one only
// with what is wrong and where it is to be fixed.
var knownDifferences = []knownDifference{}

// report fails the test with every difference that is not a known one, and when
// a known one of the app is no longer seen.
func report(t *testing.T, app, tool, covers string, diffs []difference) {
	t.Helper()
	var unknown []string
	seen := map[int]bool{}
	for _, d := range diffs {
		i := slices.IndexFunc(knownDifferences, func(k knownDifference) bool {
			return k.app == app && k.object == d.object && k.field == d.field
		})
		if i < 0 {
			unknown = append(unknown, d.String())
			continue
		}
		seen[i] = true
		t.Logf("known difference, not a failure: %s\n    why: %s", d, knownDifferences[i].why)
	}
	if len(unknown) > 0 {
		t.Errorf("Meridian and %s differ (the case covers: %s):\n%s", tool, covers, strings.Join(unknown, "\n"))
	}
	for i, k := range knownDifferences {
		if k.app == app && !seen[i] {
			t.Errorf("known difference %s %s is no longer seen: remove it from knownDifferences (and its mention in docs/render.md)", k.object, k.field)
		}
	}
}

// checkRefused checks that Meridian refused a chart with an error naming what
// it refuses, and that helm does render that object.
func checkRefused(t *testing.T, c chartCase, err error, upstream []*unstructured.Unstructured) {
	t.Helper()
	if err == nil {
		t.Fatalf("Meridian renders the chart; it must refuse it (%s)", c.covers)
	}
	for _, want := range c.refused {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Meridian's refusal does not say %q:\n%v", want, err)
		}
	}
	ref := strings.TrimSuffix(c.refused[0], ": ")
	found := false
	for _, o := range upstream {
		found = found || render.ObjectRef(o) == ref
	}
	if !found {
		var names []string
		for _, o := range upstream {
			names = append(names, render.ObjectRef(o))
		}
		t.Errorf("helm does not render %s, which the case expects Meridian to refuse; it renders %s", ref, strings.Join(names, ", "))
	}
	t.Logf("refused as expected: %v", err)
}
