package shard

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

// The tests in this file run a Manager's steps by hand on a fake clock, against a
// fake management cluster: a lease duration passes in no time.

const fakeLease = 15 * time.Second

// fakeManager returns a Manager of n shards on clk, for identity replica-a, whose
// management cluster holds objects.
func fakeManager(t *testing.T, clk *clocktesting.FakeClock, n int, objects ...runtime.Object) *Manager {
	t.Helper()
	m, err := New(Options{Client: fake.NewClientset(objects...), Namespace: testNamespace, Identity: "replica-a",
		Shards: n, LeaseDuration: fakeLease, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// armed waits until exactly one timer or ticker waits on clk.
func armed(t *testing.T, clk *clocktesting.FakeClock, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); clk.Waiters() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 5s, %d timers wait on the Manager's clock, want 1: %s", clk.Waiters(), what)
		}
	}
}

// TestHoldFencedWhenRenewalsStop holds shards whose Leases are renewed once and
// then no more: the pass goes on past the first renewal's validity, and its fenced
// context ends when two thirds of a lease duration passed since the last renewal,
// on the Manager's clock.
func TestHoldFencedWhenRenewalsStop(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	m := fakeManager(t, clk, 4)
	m.step(t.Context(), false)
	if got := m.Owned(); len(got) != 4 {
		t.Fatalf("owns %v after the first step, want all 4 shards", got)
	}
	_, fenced, release := m.Hold(t.Context())
	defer release()
	armed(t, clk, "the Hold waits for its shards' validity to end, 10s on")

	clk.Step(5 * time.Second)
	m.step(t.Context(), false) // renewed: valid until 15s
	clk.Step(5 * time.Second)  // the first validity ends; the Hold finds the renewal
	armed(t, clk, "the Hold waits for the renewed validity to end, 15s on")
	if err := context.Cause(fenced); err != nil {
		t.Fatalf("fenced at 10s, although the shards were renewed at 5s: %v", err)
	}

	clk.Step(5 * time.Second) // 15s: not renewed since 5s
	select {
	case <-fenced.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not fenced 10s after the last renewal, by the Manager's clock")
	}
	if err := context.Cause(fenced); !errors.Is(err, errExpired) {
		t.Errorf("fenced with %v, want %v", err, errExpired)
	}
}

// TestTakeoverAfterALeaseDurationOfItsOwnClock starts a replica next to a shard
// Lease another replica holds and no longer renews: it takes the Lease over once
// the Lease has not changed for a lease duration of its own clock, whatever the
// Lease's renew time says, and not a millisecond earlier.
func TestTakeoverAfterALeaseDurationOfItsOwnClock(t *testing.T) {
	holder := "replica-z_00000000"
	seconds := int32(fakeLease / time.Second)
	renewed := metav1.NewMicroTime(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	stale := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: shardLease(DefaultName, 0), Namespace: testNamespace, ResourceVersion: "7",
			Labels: map[string]string{LabelRole: "shard", LabelName: DefaultName}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, RenewTime: &renewed},
	}
	clk := clocktesting.NewFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	m := fakeManager(t, clk, 1, stale)

	m.step(t.Context(), false)
	clk.Step(fakeLease - time.Millisecond)
	m.step(t.Context(), false)
	if got := m.Owned(); len(got) > 0 {
		t.Fatalf("owns %v a millisecond before the other replica's Lease expires", got)
	}
	clk.Step(time.Millisecond)
	m.step(t.Context(), false)
	if got := m.Owned(); !slices.Equal(got, []int{0}) {
		t.Fatalf("owns %v once the other replica's Lease expired, want [0]", got)
	}
}
