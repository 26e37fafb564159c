package status

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/render/secrets"
)

// findChromium returns Debian's Chromium (or another Chrome), or skips the test.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skip("chromium is not installed (Debian: apt-get install chromium); skipping the dashboard's browser test")
	return ""
}

// browser starts headless Chromium kept off the network, and collects the page's
// uncaught exceptions and console and CSP errors.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	path := findChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests may run as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)

	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(bctx)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s (%s %s)", m, m.Source, m.URL))
				mu.Unlock()
			}
		}
	}()
	return bctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(problems)
	}
}

// shownUnits reads the overview's list of units: every unit shown, as its
// kind and state.
const shownUnits = `(() => {
  const out = {};
  for (const e of document.querySelectorAll("#units tbody tr")) {
    out[e.dataset.unit] = e.children[1].textContent + " " + e.dataset.state;
  }
  return out;
})()`

// shownCells reads the overview's heatmap: every cell that has units, as its
// tenant, region, worst state and number of units.
const shownCells = `(() => {
  const out = {};
  for (const e of document.querySelectorAll("#heatmap .cell[data-state]")) {
    out[e.closest(".tile").dataset.tenant + " " + e.dataset.region] = e.dataset.state + " " + e.dataset.units;
  }
  return out;
})()`

// wantCells is the heatmap the summary describes.
func wantCells(sum Summary) map[string]string {
	out := map[string]string{}
	for _, row := range sum.Rows {
		for i, c := range row.Cells {
			if c.Units > 0 {
				out[row.Tenant+" "+sum.Columns[i]] = fmt.Sprintf("%s %d", c.State, c.Units)
			}
		}
	}
	return out
}

func setFilter(id, value string) string {
	return fmt.Sprintf(`(() => { const s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event("change")); return s.value; })()`, id, value)
}

// filterBy sets a filter of the overview as a person would, and waits until the
// page shows what the filters in its address select.
func filterBy(ctx context.Context, t *testing.T, id, value string) {
	t.Helper()
	eval[string](ctx, t, setFilter(id, value))
	waitShown(ctx, t)
}

// waitShown waits until the page drew the view its address names.
func waitShown(ctx context.Context, t *testing.T) {
	t.Helper()
	err := chromedp.Do(ctx, waitFor(`document.body.dataset.shown === "overview?" + (location.hash.split("?")[1] || "")`, 10*time.Second))
	if err != nil {
		t.Fatalf("the page did not draw %s: %v", eval[string](ctx, t, `location.hash`), err)
	}
}

func TestDashboardInChromium(t *testing.T) {
	ctx, problems := browser(t)
	f := loadExampleFleet(t)
	s := New(Options{Redactor: secrets.NewRedactor([]string{secretValue})})
	feedExample(s, f)
	// A secret that reached an error message must not reach the page.
	leaky := f.troubledReport()
	appendHealthReason(leaky.Regions["ap-northeast-2"], unit("trucking/ap-northeast-2/portal"), ": env DB_PASSWORD="+secretValue)
	s.ObservePass(leaky, 5*time.Minute)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	want := func() map[string]string {
		out := map[string]string{}
		for _, p := range s.Status().Placements {
			out[p.Unit.String()] = p.Kind + " " + string(p.State)
		}
		return out
	}
	n := len(s.Status().Placements)

	t.Run("the overview shows every unit with its state", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.EmulateViewport(1400, 1000),
			chromedp.Navigate(srv.URL+"/"),
			waitFor(fmt.Sprintf(`document.querySelectorAll("#units tbody tr").length === %d`, n), 20*time.Second),
		)
		if err != nil {
			t.Fatalf("load the dashboard: %v", err)
		}
		got := eval[map[string]string](ctx, t, shownUnits)
		if diff := cmp.Diff(want(), got); diff != "" {
			t.Errorf("units (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantCells(s.Summary(Filter{})), eval[map[string]string](ctx, t, shownCells)); diff != "" {
			t.Errorf("heatmap (-want +got):\n%s", diff)
		}
		c := s.Status().Counts
		totals := eval[string](ctx, t, `document.getElementById("totals").textContent`)
		if wantTotals := fmt.Sprintf("%d placements (tenant × region × app)", c.Placements); !strings.HasPrefix(totals, wantTotals) || c.Placements == n {
			t.Errorf("totals = %q; want it to start with %q, namespace units and addons not counted as placements (%d units)", totals, wantTotals, n)
		}
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, "dashboard-troubled.png", shot)
		if img, err := png.Decode(bytes.NewReader(shot)); err != nil {
			t.Errorf("screenshot is not a PNG: %v", err)
		} else if failed, _ := countColour(img, 0xc5, 0x30, 0x30); failed < 12*14*eval[int](ctx, t, `document.querySelectorAll('#heatmap .cell[data-state="Failed"]').length`) {
			t.Errorf("screenshot has %d pixels of the Failed colour; want the heatmap's Failed cells drawn", failed)
		}
		page := eval[string](ctx, t, `document.documentElement.outerHTML`)
		text := eval[string](ctx, t, `document.body.innerText`)
		if strings.Contains(page, secretValue) {
			t.Error("the page shows a secret value")
		}
		for _, want := range []string{commit2.Subject, "ProgressDeadlineExceeded", `map has no entry for key "queue"`, "deletions held", "2 drifted (reported)", "DNS unhealthy", "canary eu-west-2 — healthy", "Fetching the fleet repository failed"} {
			if !strings.Contains(text, want) {
				t.Errorf("the page does not show %q", want)
			}
		}
	})

	t.Run("filters narrow the overview", func(t *testing.T) {
		filterBy(ctx, t, "filter-state", "Failed")
		failed := eval[map[string]string](ctx, t, shownUnits)
		hash := eval[string](ctx, t, `location.hash`)
		filterBy(ctx, t, "filter-state", "")
		filterBy(ctx, t, "filter-tenant", "trucking")
		filterBy(ctx, t, "filter-app", "portal")
		portals := eval[map[string]string](ctx, t, shownUnits)
		filterBy(ctx, t, "filter-app", "")
		trucking := eval[map[string]string](ctx, t, shownUnits)
		eval[bool](ctx, t, `document.getElementById("filter-clear").click() === undefined`)
		waitShown(ctx, t)
		if all := eval[map[string]string](ctx, t, shownUnits); len(all) != n {
			t.Errorf("%d units shown after clear; want %d", len(all), n)
		}
		wantFailed, wantTrucking, wantPortals := map[string]string{}, map[string]string{}, map[string]string{}
		for unit, v := range want() {
			if strings.HasSuffix(v, " Failed") {
				wantFailed[unit] = v
			}
			if strings.HasPrefix(unit, "trucking/") {
				wantTrucking[unit] = v
				if strings.HasSuffix(unit, "/portal") {
					wantPortals[unit] = v
				}
			}
		}
		if len(wantFailed) == 0 || len(wantPortals) != 3 {
			t.Fatalf("the example day changed: %d failed, %d trucking portals", len(wantFailed), len(wantPortals))
		}
		for name, c := range map[string][2]map[string]string{"state=Failed": {wantFailed, failed}, "tenant=trucking": {wantTrucking, trucking}, "tenant=trucking app=portal": {wantPortals, portals}} {
			if diff := cmp.Diff(c[0], c[1]); diff != "" {
				t.Errorf("filter %s (-want +got):\n%s", name, diff)
			}
		}
		if hash != "#/?state=Failed" {
			t.Errorf("location.hash = %q with the state filter; want #/?state=Failed, so the view can be shared", hash)
		}
	})

	t.Run("the page follows the store live", func(t *testing.T) {
		s.ObservePass(f.readyReport(rev2), 30*time.Second)
		err := chromedp.Do(ctx, waitFor(`document.querySelectorAll('#units tbody tr[data-state="Ready"]').length === document.querySelectorAll("#units tbody tr").length`, 10*time.Second))
		if err != nil {
			t.Fatalf("the page did not show the new pass: %v", err)
		}
		got := eval[map[string]string](ctx, t, shownUnits)
		if diff := cmp.Diff(want(), got); diff != "" {
			t.Errorf("units after the update (-want +got):\n%s", diff)
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, "dashboard.png", buf)
		img, err := png.Decode(bytes.NewReader(buf))
		if err != nil {
			t.Fatalf("screenshot is not a PNG: %v", err)
		}
		if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 1000 {
			t.Errorf("screenshot is %dx%d; want the 1400x1000 window", b.Dx(), b.Dy())
		}
		ready, colours := countColour(img, 0x1f, 0x9d, 0x55)
		if colours < 20 {
			t.Errorf("screenshot has %d colours: blank", colours)
		}
		if cells := eval[int](ctx, t, `document.querySelectorAll('#heatmap .cell[data-state="Ready"]').length`); ready < 12*14*cells || cells == 0 {
			t.Errorf("screenshot has %d pixels of the Ready colour; want the heatmap's %d Ready cells drawn", ready, cells)
		}
	})

	if p := problems(); len(p) > 0 {
		t.Errorf("the page logged problems:\n%s", strings.Join(p, "\n"))
	}
}

func TestDashboardShowsWhenTheDaemonIsGone(t *testing.T) {
	ctx, _ := browser(t)
	f := loadExampleFleet(t)
	s := New(Options{})
	feedExample(s, f)
	srv := httptest.NewServer(s.Handler())
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		waitFor(`document.getElementById("live").dataset.state === "live"`, 20*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := chromedp.Do(ctx, waitFor(`document.getElementById("live").dataset.state === "offline"`, 10*time.Second)); err != nil {
		t.Fatalf("the page did not say the daemon is gone: %v", err)
	}
	live := eval[string](ctx, t, `document.getElementById("live").textContent`)
	units := eval[int](ctx, t, `document.querySelectorAll("#units tbody tr").length`)
	if !strings.Contains(live, "cannot reach the daemon") || units == 0 {
		t.Errorf("live = %q with %d units; want the last data kept and the daemon said unreachable", live, units)
	}
}

// eval evaluates js in the page and returns its value.
func eval[T any](ctx context.Context, t *testing.T, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %.60q: %v", js, err)
	}
	return v
}

// waitFor waits until the JavaScript expression is true.
func waitFor(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout))
}

// countColour counts the pixels within a small distance of r, g, b, and the
// distinct colours of the image (up to 1000).
func countColour(img image.Image, r, g, b uint8) (near, colours int) {
	seen := map[[3]uint8]bool{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			c := [3]uint8{uint8(pr >> 8), uint8(pg >> 8), uint8(pb >> 8)}
			if len(seen) < 1000 {
				seen[c] = true
			}
			if diff(c[0], r) < 12 && diff(c[1], g) < 12 && diff(c[2], b) < 12 {
				near++
			}
		}
	}
	return near, len(seen)
}

func diff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// saveScreenshot keeps a screenshot in the test's temporary directory, and in
// MERIDIAN_SCREENSHOTS when that is set, for people to look at.
func saveScreenshot(t *testing.T, name string, b []byte) {
	t.Helper()
	dirs := []string{t.TempDir()}
	if d := os.Getenv("MERIDIAN_SCREENSHOTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		path := filepath.Join(d, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Error(errors.Join(errors.New("save screenshot"), err))
			continue
		}
		t.Logf("screenshot: %s", path)
	}
}
