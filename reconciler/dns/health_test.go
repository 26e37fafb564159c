package dns

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/route53test"
)

func TestFollowerSeesACheckTurnUnhealthyBetweenPasses(t *testing.T) {
	east, west := &target{}, &target{}
	east.status.Store(200)
	west.status.Store(200)
	l := serveOn(t, "127.0.0.2:0", east)
	port := l.Addr().(*net.TCPAddr).Port
	serveOn(t, fmt.Sprintf("127.0.0.3:%d", port), west)
	// Checks probe every 10 s × 0.005 = 50 ms, unhealthy after one failure.
	e := newEnv(t, route53test.Options{ProbeScale: 0.005}, Options{})
	m := manyTenants(1, "127.0.0.2", port, "us-east-1", "eu-west-2")
	e.cycle(t, m, allHealthy)

	ids := e.applier.HealthCheckIDs()
	westUnit := fleet.UnitID{Tenant: "t000", Region: "eu-west-2", App: "api"}
	if len(ids) != 2 || ids[westUnit] == "" {
		t.Fatalf("health checks of the published endpoints: %v, want one for each of the two", ids)
	}
	changed := make(chan struct{}, 10)
	f := NewFollower(FollowerOptions{Changed: func() { changed <- struct{}{} }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); f.Run(ctx, func() *Applier { return e.applier }) }()
	t.Cleanup(func() { cancel(); <-done })

	healthy := func(unit fleet.UnitID) (bool, bool) {
		st, ok := f.Status(ids[unit])
		return st.Healthy, ok
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not within 30 s: %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("both checks read healthy", func() bool {
		w, okW := healthy(westUnit)
		e, okE := healthy(fleet.UnitID{Tenant: "t000", Region: "us-east-1", App: "api"})
		return okW && okE && w && e
	})
	requests := e.srv.Count("GetHealthCheckStatus")

	west.status.Store(503)
	f.Poke(westUnit)
	waitFor("eu-west-2's check read unhealthy", func() bool { h, _ := healthy(westUnit); return !h })
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Error("Changed was not called within 30 s when the check turned unhealthy")
	}
	if st, _ := f.Status(ids[westUnit]); st.Report == "" || st.Report[:7] != "Failure" {
		t.Errorf("report %q, want a checker's failure", st.Report)
	}
	west.status.Store(200)
	waitFor("eu-west-2's check read healthy again", func() bool { h, _ := healthy(westUnit); return h })

	// Within its budget: PollsPerSecond (scaled like the server's rates, 100×)
	// allows at most this many reads in the time it ran, and Route53's own rate
	// of the operation was never exceeded.
	budget := DefaultPollsPerSecond*100*time.Since(start).Seconds() + 1
	if n := e.srv.Count("GetHealthCheckStatus"); n < requests+1 || float64(n) > budget {
		t.Errorf("%d status reads in %s, want more than the first round's %d and at most the budget's %.0f", n, time.Since(start), requests, budget)
	}
	for _, c := range e.srv.Calls() {
		if c.Operation == "GetHealthCheckStatus" && c.Error != "" {
			t.Errorf("a status read was refused: %s", c.Error)
		}
	}
}

// TestFollowerReadsAPokeArrivingDuringTheWaitNext pokes the check just read
// while Run waits for its budget: that check is read next, not the one the
// round-robin would have chosen before the wait.
func TestFollowerReadsAPokeArrivingDuringTheWaitNext(t *testing.T) {
	e := newEnv(t, route53test.Options{}, Options{})
	m := manyTenants(1, "127.0.0.2", 8080, "us-east-1", "eu-west-2", "ap-northeast-2")
	e.cycle(t, m, allHealthy)
	ids := e.applier.HealthCheckIDs()
	if len(ids) != 3 {
		t.Fatalf("health checks of the published endpoints: %v, want three", ids)
	}
	// One read every 2 s (0.005 × the env's RateScale of 100): a poke sent
	// right after a read arrives during the wait for the next.
	f := NewFollower(FollowerOptions{PollsPerSecond: 0.005})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx, func() *Applier { return e.applier }) }()
	t.Cleanup(func() { cancel(); <-done })

	readAt := func() map[fleet.UnitID]time.Time {
		out := map[fleet.UnitID]time.Time{}
		for u, id := range ids {
			st, _ := f.Status(id)
			out[u] = st.At
		}
		return out
	}
	// nextRead waits for the next read after before and returns its placement.
	nextRead := func(before map[fleet.UnitID]time.Time) fleet.UnitID {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			for u, at := range readAt() {
				if !at.Equal(before[u]) {
					return u
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("no health check read within 30 s")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	first := nextRead(readAt())
	start := time.Now()
	f.Poke(first)
	before := readAt()
	if got := nextRead(before); got != first {
		t.Errorf("after a poke of %s during the wait, %s's check was read first", first, got)
	}
	t.Logf("the next read came %s after the poke", time.Since(start).Round(time.Millisecond))
}

func TestFollowerPollsPokedChecksFirst(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	f := NewFollower(FollowerOptions{Now: func() time.Time { return now }})
	ids := map[fleet.UnitID]string{
		{Tenant: "a", Region: "r", App: "x"}: "hc-1",
		{Tenant: "b", Region: "r", App: "x"}: "hc-2",
		{Tenant: "c", Region: "r", App: "x"}: "hc-3",
		{Tenant: "d", Region: "r", App: "x"}: "hc-3", // a shared check is read once a round
		{Tenant: "e", Region: "r", App: "x"}: "hc-4",
	}
	var got []string
	pick := func(after time.Duration) {
		now = now.Add(after)
		id, _ := f.next(ids)
		got = append(got, id)
	}
	pick(0)
	pick(time.Second)
	f.Poke(fleet.UnitID{Tenant: "c", Region: "r", App: "x"})
	f.Poke(fleet.UnitID{Tenant: "gone", Region: "r", App: "x"}) // no check: skipped
	pick(time.Second)                                           // the poke
	pick(time.Second)                                           // the round-robin goes on
	pick(time.Second)
	pick(8 * time.Second) // 10 s after the poke, past WatchEvery: watched, read again
	pick(time.Second)
	now = now.Add(3 * time.Minute) // the watch is over: the round-robin alone
	for range 4 {
		pick(10 * time.Second)
	}
	want := []string{"hc-1", "hc-2", "hc-3", "hc-3", "hc-4", "hc-3", "hc-1", "hc-2", "hc-3", "hc-4", "hc-1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("order %v, want %v", got, want)
	}
}
