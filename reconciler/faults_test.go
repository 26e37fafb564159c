package reconciler_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/syncbuf"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/inventory"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/sources"
)

// TestFaults is the fault suite of RELIABILITY.md: each subtest breaks one thing
// under a running fleet and checks that nothing is lost, nothing is applied from a
// revision that should not be, and the daemon converges once the fault is gone.
// Each logs its figures.
func TestFaults(t *testing.T) {
	f := newFixture(t)
	if _, err := f.once(t); err != nil {
		t.Fatalf("initial sync: %v", err)
	}
	charging := file(t, "tenants/charging-stations-ca.yaml")
	trucking := file(t, "tenants/trucking.yaml")
	logistics := file(t, "tenants/logistics-eu.yaml")

	t.Run("a region's apiserver killed mid-apply, again and again, loses nothing", func(t *testing.T) {
		const rounds = 3
		const region = "us-east-1"
		var applies atomic.Int32 // applies started in region in this round
		var killAt atomic.Int32  // the apply during which the apiserver dies
		killed := make(chan time.Duration, 1)
		opts := f.options()
		opts.Once = true
		opts.NewCluster = func(name string, cfg *rest.Config) (reconciler.Cluster, error) {
			c, err := realCluster(cfg)
			if err != nil || name != region {
				return c, err
			}
			return killing{Cluster: c, before: func() {
				if applies.Add(1) != killAt.Load() {
					return
				}
				// Some applies are cut before their first request, some halfway.
				delay := time.Duration(rand.IntN(40)) * time.Millisecond
				go func() {
					time.Sleep(delay)
					if err := f.tb.KillAPIServer(region); err != nil {
						t.Errorf("kill: %v", err)
					}
					killed <- delay
				}()
			}}, nil
		}
		for i := range rounds {
			applies.Store(0)
			killAt.Store(int32(1 + rand.IntN(3)))
			// A new pod quota for every tenant: three applies in the region to cut,
			// and nothing to roll out.
			rev := f.push(t, fmt.Sprintf("round %d: new pod quotas", i), map[string]string{
				"tenants/trucking.yaml":             replace(t, trucking, `pods: "40"`, fmt.Sprintf(`pods: "5%d"`, i)),
				"tenants/logistics-eu.yaml":         replace(t, logistics, `pods: "20"`, fmt.Sprintf(`pods: "3%d"`, i)),
				"tenants/charging-stations-ca.yaml": replace(t, charging, `pods: "20"`, fmt.Sprintf(`pods: "3%d"`, i)),
			})
			before := f.inventories(t)[region]
			var report *reconciler.Report
			opts.Passed = func(r *reconciler.Report) { report = r }
			err := reconciler.Run(t.Context(), opts)
			var delay time.Duration
			select {
			case delay = <-killed:
			case <-time.After(time.Minute):
				t.Fatalf("round %d: the pass ended without apply %d in %s (%v)", i, killAt.Load(), region, err)
			}
			if err == nil || report == nil || report.Regions[region].Problem() == nil {
				t.Fatalf("round %d: the pass did not fail in %s with its apiserver killed: %v", i, region, err)
			}
			for name, rr := range report.Regions {
				if name != region && (rr.Problem() != nil || len(rr.Unhealthy()) > 0) {
					t.Errorf("round %d: %s did not converge while %s was down: %v %v", i, name, region, rr.Problem(), rr.Unhealthy())
				}
			}
			for _, ch := range report.Regions[region].Changes.Changes {
				if len(ch.Delete) > 0 || ch.Action == plan.Prune {
					t.Errorf("round %d: the failed pass planned deletions in %s: %s", i, region, ch.Unit)
				}
			}
			t.Logf("round %d: apiserver killed %v into apply %d of revision %s: %v", i, delay, killAt.Load(), rev[:12], report.Regions[region].Problem())
			if err := f.tb.StartAPIServer(t.Context(), region); err != nil {
				t.Fatal(err)
			}
			// Nothing is lost: every unit recorded before the pass is still recorded.
			after := f.inventories(t)[region]
			for unit := range before {
				if _, ok := after[unit]; !ok {
					t.Errorf("round %d: inventory of %s lost", i, unit)
				}
			}
			killAt.Store(0)
			if _, err := f.once(t); err != nil {
				t.Fatalf("round %d: the pass after the apiserver returned: %v", i, err)
			}
			n := f.checkConverged(t)
			t.Logf("round %d: converged; %d live objects checked, 0 missing, 0 orphaned", i, n)
		}
		t.Logf("%d apiserver kills, each during an apply", rounds)
	})

	t.Run("the git server down keeps the last revision running, and its commits arrive when it returns", func(t *testing.T) {
		through, err := url.Parse(f.git.URL())
		if err != nil {
			t.Fatal(err)
		}
		proxy := newSwitch(t, through.Host)
		proxy.up()
		through.Host = proxy.addr()
		git, err := sources.NewGit(sources.GitOptions{
			URL:      through.String(),
			Ref:      sources.Ref{Branch: "main"},
			CacheDir: t.TempDir(),
			Logger:   f.logs.logger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		opts := f.options()
		opts.Poller = &sources.Poller{Source: git, Interval: 200 * time.Millisecond, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
		opts.Snapshots = git
		reports := make(chan *reconciler.Report, 10)
		opts.Passed = func(r *reconciler.Report) { reports <- r }
		var failures atomic.Int32
		opts.FetchFailed = func(error) { failures.Add(1) }
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- reconciler.Run(ctx, opts) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
		next := func() *reconciler.Report {
			select {
			case r := <-reports:
				return r
			case <-time.After(2*healthTimeout + time.Minute):
				t.Fatal("no pass")
			}
			return nil
		}
		if r := next(); r.Err() != nil {
			t.Fatal(r.Err())
		}
		before := f.inventories(t)

		proxy.down()
		rev := f.push(t, "trucking: four portal replicas", map[string]string{"tenants/trucking.yaml": replace(t, trucking, "        replicas: 3\n", "        replicas: 4\n")})
		for deadline := time.Now().Add(time.Minute); failures.Load() < 3; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d failed fetches in a minute with the git server down", failures.Load())
			}
		}
		select {
		case r := <-reports:
			t.Fatalf("a pass ran on %s with the git server down", r.Revision)
		default:
		}
		if diff := cmp.Diff(before, f.inventories(t)); diff != "" {
			t.Errorf("inventories changed with the git server down (-want +got):\n%s", diff)
		}
		f.checkLive(t, before, rev)
		down := failures.Load()

		proxy.up()
		r := next()
		if r.Revision != rev || r.Err() != nil {
			t.Fatalf("pass on %s (%v), want %s applied", r.Revision, r.Err(), rev)
		}
		if diff := cmp.Diff("trucking/portal: replicas=4 ready=4 available=True", available(f.deployment(t, "us-east-1", "trucking", "portal"))); diff != "" {
			t.Errorf("us-east-1 (-want +got):\n%s", diff)
		}
		t.Logf("%d failed fetches while the git server was down; nothing applied; the commit made meanwhile applied when it returned", down)
	})

	t.Run("a force-push that rewrites history is applied as the branch's new head", func(t *testing.T) {
		ctx := t.Context()
		old, err := f.work.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.work.Git(ctx, "reset", "--hard", "HEAD~1"); err != nil {
			t.Fatal(err)
		}
		rewritten, err := f.work.CommitFiles(ctx, "trucking: two portal replicas, instead", map[string]string{
			"tenants/trucking.yaml": replace(t, trucking, "        replicas: 3\n", "        replicas: 2\n"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.work.ForcePush(ctx); err != nil {
			t.Fatal(err)
		}
		report, err := f.once(t)
		if err != nil {
			t.Fatal(err)
		}
		if report.Revision != rewritten {
			t.Fatalf("pass on %s, want the rewritten head %s (the old head was %s)", report.Revision, rewritten, old)
		}
		for _, region := range []string{"us-east-1", "eu-west-2"} {
			if diff := cmp.Diff("trucking/portal: replicas=2 ready=2 available=True", available(f.deployment(t, region, "trucking", "portal"))); diff != "" {
				t.Errorf("%s (-want +got):\n%s", region, diff)
			}
		}
		f.checkConverged(t)
	})

	t.Run("a corrupt commit applies nothing and keeps the last good revision", func(t *testing.T) {
		secrets := file(t, "tenants/trucking.secrets.sops.yaml")
		i := strings.Index(secrets, "    mac: ENC[AES256_GCM,data:") + len("    mac: ENC[AES256_GCM,data:")
		flipped := "A"
		if secrets[i] == 'A' {
			flipped = "B"
		}
		cases := []struct {
			name  string
			files map[string]string
			want  string // in the pass's error or the refusal
		}{
			{"bad YAML", map[string]string{"tenants/logistics-eu.yaml": logistics + "  apps: [\n"}, "tenants/logistics-eu.yaml:"},
			{"a SOPS file whose MAC does not match", map[string]string{"tenants/trucking.secrets.sops.yaml": secrets[:i] + flipped + secrets[i+1:]}, "tenants/trucking.secrets.sops.yaml"},
			{"a chart that is missing", map[string]string{"apps/worker/chart/Chart.yaml": ""}, "apps/worker"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := f.inventories(t)
				good, err := f.work.Head(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				rev := f.push(t, c.name, c.files)
				var refused []error
				opts := f.options()
				opts.Once = true
				opts.Refused = func(_ *sources.Snapshot, errs []error) { refused = errs }
				var report *reconciler.Report
				opts.Passed = func(r *reconciler.Report) { report = r }
				err = reconciler.Run(t.Context(), opts)
				msg := errString(err)
				for _, e := range refused {
					msg += "\n" + e.Error()
				}
				if report != nil {
					for _, e := range report.RenderErrors {
						msg += "\n" + e.Error()
					}
				}
				if !strings.Contains(msg, c.want) {
					t.Errorf("the corrupt commit was not refused naming %q; got:\n%s", c.want, msg)
				}
				if diff := cmp.Diff(before, f.inventories(t)); diff != "" {
					t.Errorf("inventories (-want +got):\n%s", diff)
				}
				f.checkLive(t, before, rev)
				t.Logf("refused: %s", strings.TrimSpace(msg))

				// Revert, so the next case starts from the last good revision.
				if _, err := f.work.Git(t.Context(), "checkout", good, "--", "."); err != nil {
					t.Fatal(err)
				}
				if _, err := f.work.Commit(t.Context(), "revert: "+c.name); err != nil {
					t.Fatal(err)
				}
				if err := f.work.Push(t.Context()); err != nil {
					t.Fatal(err)
				}
			})
		}
	})

	t.Run("a full cache disk applies nothing, says so, and the next run converges", func(t *testing.T) {
		probe := exec.Command("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", `mount -t tmpfs -o size=1m tmpfs "$1"`, "sh", t.TempDir())
		if out, err := probe.CombinedOutput(); err != nil {
			t.Skipf("needs a user and mount namespace to give the cache a small disk of its own (unshare and mount: %v: %s)", err, out)
		}
		bin := buildMeridian(t)
		dir := t.TempDir()
		cache := filepath.Join(dir, "cache")
		if err := os.Mkdir(cache, 0o700); err != nil {
			t.Fatal(err)
		}
		cfg, _ := f.writeDaemonConfig(t, dir, "127.0.0.1:0", "")
		// One mount namespace, so the small disk outlives each run: a run, a run
		// with the disk full, a run with space again. The test moves each step on.
		script := `set -u
mount -t tmpfs -o size=64m tmpfs "$CACHE" || exit 10
step() { while [ ! -e "$DIR/go$1" ]; do sleep 0.1; done; }
"$BIN" run --config "$CFG" --once >"$DIR/run1.log" 2>&1; echo $? >"$DIR/rc1"
step 2
dd if=/dev/zero of="$CACHE/filler" bs=64k 2>/dev/null
"$BIN" run --config "$CFG" --once >"$DIR/run2.log" 2>&1; echo $? >"$DIR/rc2"
step 3
rm "$CACHE/filler"
"$BIN" run --config "$CFG" --once >"$DIR/run3.log" 2>&1; echo $? >"$DIR/rc3"
`
		cmd := exec.CommandContext(t.Context(), "unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script)
		cmd.Env = append(os.Environ(), "CACHE="+cache, "DIR="+dir, "BIN="+bin, "CFG="+cfg)
		var out syncbuf.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		ended := false // the script's exit was received from done
		var scriptErr error
		result := func(step int) (rc int, log string) {
			t.Helper()
			deadline := time.After(5 * time.Minute)
			for {
				b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("rc%d", step)))
				if err == nil && strings.HasSuffix(string(b), "\n") { // written whole
					logData, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("run%d.log", step)))
					rc, _ := strconv.Atoi(strings.TrimSpace(string(b)))
					return rc, string(logData)
				}
				if ended {
					t.Fatalf("the script ended before run %d: %v\n%s", step, scriptErr, out.String())
				}
				select {
				case scriptErr = <-done:
					ended = true // read the rc file once more: the script may have written it as it ended
				case <-deadline:
					t.Fatalf("run %d did not end within 5m", step)
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		next := func(step int) {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("go%d", step)), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}

		if rc, log := result(1); rc != 0 {
			t.Fatalf("run 1 (disk with space) exited %d:\n%s", rc, log)
		}
		before := f.inventories(t)
		rev := f.push(t, "trucking: five portal replicas", map[string]string{"tenants/trucking.yaml": replace(t, trucking, "        replicas: 3\n", "        replicas: 5\n")})
		next(2)
		rc, log := result(2)
		if rc == 0 {
			t.Errorf("run 2 (disk full) succeeded:\n%s", log)
		}
		if !strings.Contains(log, "no space left on device") {
			t.Errorf("run 2 does not say the disk is full:\n%s", log)
		}
		if diff := cmp.Diff(before, f.inventories(t)); diff != "" {
			t.Errorf("inventories changed with the cache disk full (-want +got):\n%s", diff)
		}
		f.checkLive(t, before, rev)
		next(3)
		if rc, log := result(3); rc != 0 {
			t.Fatalf("run 3 (space again) exited %d:\n%s", rc, log)
		}
		if !ended {
			scriptErr = <-done
		}
		if scriptErr != nil {
			t.Fatalf("script: %v\n%s", scriptErr, out.String())
		}
		if diff := cmp.Diff("trucking/portal: replicas=5 ready=5 available=True", available(f.deployment(t, "us-east-1", "trucking", "portal"))); diff != "" {
			t.Errorf("us-east-1 (-want +got):\n%s", diff)
		}
		n := f.checkConverged(t)
		t.Logf("disk full: %s; nothing applied; the next run converged (%d live objects checked)", lastLine(log), n)
	})
}

// buildMeridian builds the meridian binary into a temporary directory.
func buildMeridian(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "meridian")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "meridian.dev/meridian/cmd/meridian")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeDaemonConfig writes a `meridian run` configuration for the fixture into dir,
// with its cache in dir/cache, the server on listen and extra lines appended; it
// returns the file and the decryption key file.
func (f *fixture) writeDaemonConfig(t *testing.T, dir, listen, extra string) (cfg, key string) {
	t.Helper()
	key, err := filepath.Abs(filepath.Join(exampleDir, "demo-age-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "config.yaml")
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
listen: %s
healthTimeout: 3m
%s`, fleet.APIVersion, f.git.URL(), f.tb.Kubeconfig, key, filepath.Join(dir, "cache"), listen, extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, key
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// killing is a region whose before runs as each apply starts.
type killing struct {
	reconciler.Cluster
	before func()
}

func (k killing) Apply(ctx context.Context, unit *render.Unit, prev *plan.Inventory) error {
	k.before()
	return k.Cluster.Apply(ctx, unit, prev)
}

// checkConverged checks that the regions hold exactly what the repository's head
// renders: each inventory records its unit's objects and digest, every recorded
// object is live, and no object labelled as Meridian's is outside an inventory
// (an orphan). It returns how many live objects it checked.
func (f *fixture) checkConverged(t *testing.T) int {
	t.Helper()
	res, err := f.renderer.Render(t.Context(), f.head(t), render.Filter{})
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
		want[u.Region][u.ID().String()] = u.Digest + " " + fmt.Sprint(refs)
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
				if ref.Kind == "Namespace" && ref.Name == inventory.Namespace || ref.Namespace == inventory.Namespace {
					continue // where the inventories are kept, and the inventories themselves
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
	return checked
}
