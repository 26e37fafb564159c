package reconciler_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"meridian.dev/meridian/reconciler/inventory"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/fleet"
)

// TestKilledDaemonConverges runs the meridian binary against the testbed, kills it
// with SIGKILL at random points of its first sync, then runs `run --once` to
// completion: every desired object exists, the inventories are exactly the desired
// units, and no object Meridian manages is missing from them.
func TestKilledDaemonConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the meridian binary")
	}
	f := newFixture(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "meridian")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "meridian.dev/meridian/cmd/meridian")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	key, err := filepath.Abs(filepath.Join(exampleDir, "demo-age-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`apiVersion: %s
kind: Config
repository:
  url: %s
  branch: main
  interval: 1s
kubeconfig: %s
decryption:
  keyFiles: [%s]
cacheDir: %s
listen: 127.0.0.1:0
healthTimeout: 3m
`, fleet.APIVersion, f.git.URL(), f.tb.Kubeconfig, key, filepath.Join(dir, "cache"))), 0o600); err != nil {
		t.Fatal(err)
	}

	// Each daemon is killed a random 100-1500ms after it took the revision in, that
	// is while it renders, applies or waits for health.
	const kills = 5
	daemonLog := &logBuffer{}
	progress := make([]int, 0, kills)
	for i := range kills {
		start := len(daemonLog.String())
		cmd := exec.Command(bin, "run", "--config", cfg)
		cmd.Stdout, cmd.Stderr = daemonLog, daemonLog
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(daemonLog.String()[start:], "new revision") {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("daemon %d took no revision in a minute:\n%s", i, daemonLog.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		wait := time.Duration(100+rand.IntN(1400)) * time.Millisecond
		time.Sleep(wait)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", i, err)
		}
		_ = cmd.Wait()
		n := 0
		for _, m := range f.inventories(t) {
			n += len(m)
		}
		progress = append(progress, n)
		t.Logf("killed daemon %d %v after it took the revision in; %d units recorded by then", i, wait, n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	once := exec.CommandContext(ctx, bin, "run", "--config", cfg, "--once")
	once.Stdout, once.Stderr = daemonLog, daemonLog
	if err := once.Run(); err != nil {
		t.Fatalf("run --once after %d kills: %v\n%s", kills, err, daemonLog.String())
	}

	// The desired units, as this revision renders them.
	snap, err := f.git.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	model, err := fleet.LoadDir(snap.Dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.renderer.Render(t.Context(), render.Snapshot{Dir: snap.Dir, Revision: snap.Revision, Model: model}, render.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{}
	for _, u := range res.Units {
		if want[u.Region] == nil {
			want[u.Region] = map[string]string{}
		}
		refs := make([]string, len(u.Objects))
		for i, o := range u.Objects {
			refs[i] = plan.RefOf(o).String()
		}
		slices.Sort(refs)
		want[u.Region][u.ID()] = u.Digest + " " + fmt.Sprint(refs)
	}
	invs := f.inventories(t)
	got := map[string]map[string]string{}
	kinds := map[schema.GroupVersionKind]bool{}
	listed := map[string]bool{}
	for region, m := range invs {
		got[region] = map[string]string{}
		for unit, inv := range m {
			refs := make([]string, len(inv.Objects))
			for i, r := range inv.Objects {
				refs[i] = r.String()
				kinds[r.GroupVersionKind()] = true
				listed[region+" "+r.String()] = true
			}
			slices.Sort(refs)
			got[region][unit] = inv.Digest + " " + fmt.Sprint(refs)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inventories (-want +got):\n%s", diff)
	}
	f.checkLive(t, invs, "")

	// No orphans: every object labelled as Meridian's, of every kind Meridian
	// applies, is in an inventory.
	checked := 0
	for _, r := range f.tb.Regions {
		c, err := client.New(r.Config, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for gvk := range kinds {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			if err := c.List(t.Context(), list, client.MatchingLabels{render.LabelManagedBy: "meridian"}); err != nil {
				t.Fatalf("%s: list %s: %v", r.Name, gvk.Kind, err)
			}
			for _, o := range list.Items {
				checked++
				ref := plan.RefOf(&o)
				if ref.Kind == "Namespace" && ref.Name == inventory.Namespace {
					continue // where the inventories are kept
				}
				if !listed[r.Name+" "+ref.String()] {
					t.Errorf("%s: %s is Meridian's but in no inventory (an orphan)", r.Name, ref)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no object labelled as Meridian's was found")
	}
	t.Logf("%d kills (units recorded at each: %v); %d live objects checked against the inventories", kills, progress, checked)
}
