package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"meridian.dev/meridian/cmd/internal/daemon"
	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/fleetgen"
	"meridian.dev/meridian/internal/testenv/gitserver"
	"meridian.dev/meridian/internal/testenv/syncbuf"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler/status"
)

// TestLiveTruth runs the daemon on a real region until its fleet is Ready, then
// scales a Deployment to zero behind its back, without a commit, and sees the
// status API, the metrics and a notification say so within seconds; then scales
// it back and sees them return to Ready.
func TestLiveTruth(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1, Workloads: true})
	ctx := t.Context()
	region := tb.Regions[0].Name

	// The fleet, in a git repository the daemon follows.
	srv := gitserver.New(t, gitserver.Options{})
	if _, err := srv.CreateRepo("fleet.git"); err != nil {
		t.Fatal(err)
	}
	work, err := srv.Clone(ctx, "fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	fleetDir := t.TempDir()
	if err := fleetgen.Write(fleetDir, fleetgen.Spec{Tenants: 2, Regions: 1, Apps: 2, Example: "../../../fleet-example"}); err != nil {
		t.Fatal(err)
	}
	if err := work.CopyTree(fleetDir); err != nil {
		t.Fatal(err)
	}
	if _, err := work.Commit(ctx, "two tenants"); err != nil {
		t.Fatal(err)
	}
	if err := work.Push(ctx); err != nil {
		t.Fatal(err)
	}

	// A webhook receiving the notifications.
	events := make(chan status.Event, 100)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e status.Event
		if err := json.NewDecoder(r.Body).Decode(&e); err == nil {
			events <- e
		}
	}))
	t.Cleanup(hook.Close)

	dir := t.TempDir()
	hookFile := filepath.Join(dir, "webhook-url")
	if err := os.WriteFile(hookFile, []byte(hook.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	configFile := filepath.Join(dir, "meridian.yaml")
	cfg := fmt.Sprintf(`apiVersion: meridian.dev/v1alpha1
kind: Config
repository:
  url: %s
  branch: main
  interval: 1m
kubeconfig: %s
cacheDir: %s
listen: %s
healthTimeout: 2m
notifications:
  webhookURLFile: %s
`, srv.URL("fleet.git"), tb.Kubeconfig, filepath.Join(dir, "cache"), listen, hookFile)
	if err := os.WriteFile(configFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	dctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- daemon.Run(dctx, &logs, daemon.Options{ConfigFile: configFile}) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("the daemon did not stop within a minute")
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})

	base := "http://" + listen
	portal := fleet.UnitID{Tenant: fleetgen.TenantName(0), Region: region, App: "portal"}
	start := time.Now()
	eventually(t, 3*time.Minute, "every placement Ready", func() error {
		st, err := placements(base)
		if err != nil {
			return err
		}
		if len(st) != 6 {
			return fmt.Errorf("%d placements, want 6", len(st))
		}
		for u, s := range st {
			if s != "Ready" {
				return fmt.Errorf("%s is %s", u, s)
			}
		}
		return nil
	})
	t.Logf("fleet Ready after %s", time.Since(start).Round(time.Millisecond))

	cs := kubernetes.NewForConfigOrDie(tb.Regions[0].Config)
	deps, err := cs.AppsV1().Deployments(portal.Tenant).List(ctx, metav1.ListOptions{LabelSelector: "meridian.dev/app=portal"})
	if err != nil || len(deps.Items) != 1 {
		t.Fatalf("portal's Deployment: %v", err)
	}
	name, replicas := deps.Items[0].Name, *deps.Items[0].Spec.Replicas
	scale := func(n int32) {
		t.Helper()
		s, err := cs.AppsV1().Deployments(portal.Tenant).GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Spec.Replicas = n
		if _, err := cs.AppsV1().Deployments(portal.Tenant).UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// truth waits until the API, the metrics and a notification all say state.
	truth := func(state, kind string) {
		t.Helper()
		start := time.Now()
		eventually(t, 30*time.Second, portal.String()+" "+state+" in the API", func() error {
			st, err := placements(base)
			if err != nil {
				return err
			}
			if st[portal.String()] != state {
				return fmt.Errorf("%s is %s", portal, st[portal.String()])
			}
			return nil
		})
		api := time.Since(start)
		eventually(t, 30*time.Second, portal.String()+" "+state+" in the metrics", func() error {
			return syncState(base, portal, state)
		})
		metrics := time.Since(start)
		deadline := time.After(30 * time.Second)
		for {
			select {
			case e := <-events:
				if e.Kind != kind {
					continue
				}
				if e.Region != region || !strings.Contains(e.Message, portal.String()) {
					t.Errorf("%s notification: %+v, want one of %s", kind, e, portal)
				}
				t.Logf("%s %s: API after %s, metrics after %s, %q notified after %s", portal, state, api.Round(time.Millisecond), metrics.Round(time.Millisecond), e.Kind, time.Since(start).Round(time.Millisecond))
				return
			case <-deadline:
				t.Fatalf("no %s notification within 15s", kind)
			}
		}
	}

	scale(0)
	truth("Failed", status.EventUnhealthy)
	scale(replicas)
	truth("Ready", status.EventRecovered)
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// eventually calls check until it succeeds, and fails the test after timeout with
// its last error.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var client = &http.Client{Timeout: 5 * time.Second}

// placements returns the state of every placement /api/v1/status shows, by unit.
func placements(base string) (map[string]string, error) {
	resp, err := client.Get(base + "/api/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct {
		Placements []struct {
			Unit  string `json:"unit"`
			State string `json:"state"`
		} `json:"placements"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range st.Placements {
		out[p.Unit] = p.State
	}
	return out, nil
}

// syncState checks that /metrics has meridian_placement_sync_state 1 for unit in
// state.
func syncState(base string, unit fleet.UnitID, state string) error {
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	want := []string{`app="` + unit.App + `"`, `region="` + unit.Region + `"`, `tenant="` + unit.Tenant + `"`}
	found := ""
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "meridian_placement_sync_state{") || !strings.HasSuffix(line, " 1") {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			found = line
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if !strings.Contains(found, `state="`+state+`"`) {
		return fmt.Errorf("sync state of %s: %q", unit, found)
	}
	return nil
}
