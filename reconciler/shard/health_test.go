package shard

import (
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/syncbuf"
	"meridian.dev/meridian/internal/testenv/testbed"
)

// startDNSManager runs a Manager with the Route53 writer's Lease until the test
// ends or stop is called; kill stops it as SIGKILL would, leaving its Leases and
// health report behind.
func startDNSManager(t *testing.T, cfg *rest.Config, identity string, logs *syncbuf.Buffer) (m *Manager, kill func()) {
	t.Helper()
	m, stop := runManager(t, cfg, identity, logs, true)
	return m, func() { m.abandon.Store(true); stop() }
}

// TestHealthOfLiveMembersOnly: the health report a replica left behind when it
// went away is not read, although it is the newest; of two live replicas'
// reports the tenant's owner's wins; and the leader removes the report of a
// replica whose member Lease it reaps.
func TestHealthOfLiveMembersOnly(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1})
	cfg := tb.Regions[0].Config
	client := kubernetes.NewForConfigOrDie(cfg)
	if _, err := client.CoreV1().Namespaces().Create(t.Context(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("managers' log:\n%s", logs.String())
		}
	})
	a, _ := startDNSManager(t, cfg, "replica-a", logs)
	b, _ := startDNSManager(t, cfg, "replica-b", logs)
	c, killC := startDNSManager(t, cfg, "replica-c", logs)
	waitBalanced(t, 30*time.Second, a, b, c)

	// A tenant that a owns now and will own once c is gone.
	tenant := ""
	for i := 0; tenant == ""; i++ {
		name := "tenant-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		s := Of(name, 8)
		if Owner(s, []string{"replica-a", "replica-b", "replica-c"}) == "replica-a" && Owner(s, []string{"replica-a", "replica-b"}) == "replica-a" {
			tenant = name
		}
	}
	held := fleet.UnitID{Tenant: tenant, Region: "eu", App: "portal"}
	onlyC := fleet.UnitID{Tenant: tenant, Region: "us", App: "portal"}
	report := func(m *Manager, healthy map[fleet.UnitID]bool) {
		t.Helper()
		if err := m.ReportHealth(t.Context(), "rev", healthy); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // the next report is newer
	}
	// c found the placement going, then died; a, its owner, holds the removal
	// and found it healthy; b, which does not own it, reports it unhealthy last.
	report(a, map[fleet.UnitID]bool{held: true})
	report(c, map[fleet.UnitID]bool{held: false, onlyC: false})
	killC()
	killed := time.Now()
	report(b, map[fleet.UnitID]bool{held: false})

	want := map[fleet.UnitID]bool{held: true}
	start := time.Now()
	for {
		got, err := b.Health(t.Context(), "rev")
		if err != nil {
			t.Fatal(err)
		}
		if maps.Equal(got, want) {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("after 30s, the writer reads %v, want %v (only live members' reports, the owner's first)", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("c's report left out %s after it was killed", time.Since(killed).Round(time.Millisecond))

	cms := client.CoreV1().ConfigMaps(testNamespace)
	start = time.Now()
	for {
		_, err := cms.Get(t.Context(), healthName(DefaultName, "replica-c"), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > 60*time.Second {
			t.Fatal("after 60s, the health report of the killed replica is still there")
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("c's health report removed %s after it was killed", time.Since(killed).Round(time.Millisecond))
	for _, name := range []string{"replica-a", "replica-b"} {
		if _, err := cms.Get(t.Context(), healthName(DefaultName, name), metav1.GetOptions{}); err != nil {
			t.Errorf("%s's health report: %v", name, err)
		}
	}
}
