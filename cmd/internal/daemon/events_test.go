package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler/plan"
)

// TestEventsOfAUnit reads, from a real kube-apiserver, the events of a unit's
// objects and of the Pods and ReplicaSets its Deployment made, and none of its
// neighbours'.
func TestEventsOfAUnit(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1})
	region := tb.Regions[0]
	ctx := t.Context()
	client := kubernetes.NewForConfigOrDie(region.Config)
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "trucking"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	event := func(name, kind, object, reason, typ string, count int32, age time.Duration) {
		t.Helper()
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: "trucking"},
			InvolvedObject: corev1.ObjectReference{Kind: kind, Namespace: "trucking", Name: object},
			Reason:         reason, Message: reason + " of " + object, Type: typ, Count: count,
			FirstTimestamp: metav1.NewTime(at), LastTimestamp: metav1.NewTime(at.Add(age)),
		}
		if _, err := client.CoreV1().Events("trucking").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	event("e1", "Deployment", "portal", "ScalingReplicaSet", "Normal", 1, time.Minute)
	event("e2", "Pod", "portal-5d8f-x2k4p", "BackOff", "Warning", 7, 3*time.Minute)
	event("e3", "ReplicaSet", "portal-5d8f", "SuccessfulCreate", "Normal", 1, 2*time.Minute)
	event("e4", "Pod", "portalx-1", "BackOff", "Warning", 1, 4*time.Minute) // another app's
	event("e5", "Service", "api", "Updated", "Normal", 1, 5*time.Minute)    // another unit's
	event("e6", "Service", "portal", "Updated", "Normal", 2, 30*time.Second)
	event("e7", "Pod", "portal-admin-5d8f-x2k4p", "BackOff", "Warning", 1, 6*time.Minute) // portal-admin's, another unit
	event("e8", "ReplicaSet", "portal-admin", "SuccessfulCreate", "Normal", 1, 6*time.Minute)
	// portal-bd's, another unit's DaemonSet: its Pod's name is shaped as one of portal's too.
	event("e9", "Pod", "portal-bd-x2k4p", "BackOff", "Warning", 1, 6*time.Minute)
	event("e10", "Pod", "portal-6d8f-zzzzz", "Pulled", "Normal", 1, 7*time.Minute)
	// More events than a page: the newest are read too.
	for i := range 3 {
		event(fmt.Sprintf("e%d", 90+i), "Pod", "portal-6d8f-zzzzz", "Started", "Normal", 1, 8*time.Minute+time.Duration(i)*time.Second)
	}

	events := newRegionEvents()
	unit := fleet.UnitID{Tenant: "trucking", Region: region.Name, App: "portal"}
	objects := []plan.ObjectRef{
		{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "trucking", Name: "portal"},
		{Version: "v1", Kind: "Service", Namespace: "trucking", Name: "portal"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole", Name: "portal"},
	}
	others := []plan.ObjectRef{
		{Group: "apps", Version: "v1", Kind: "DaemonSet", Namespace: "trucking", Name: "portal-bd"},
		{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "trucking", Name: "portal-admin"},
	}
	if _, err := events.read(ctx, unit, objects, others); err == nil {
		t.Error("events were read from a region the reconciler has not connected to")
	}
	events.connected(region.Name, region.Config)
	defer func(n int64) { eventsPage = n }(eventsPage)
	eventsPage = 4 // the 13 events take four pages
	got, err := events.read(context.Background(), unit, objects, others)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, e := range got {
		seen = append(seen, e.Type+" "+e.Reason+" "+e.Object+" "+e.Message)
		if e.Last.IsZero() || e.Count == 0 {
			t.Errorf("event %s/%s: last %v, count %d", e.Object, e.Reason, e.Last, e.Count)
		}
	}
	want := []string{
		"Normal Started Pod/trucking/portal-6d8f-zzzzz Started of portal-6d8f-zzzzz",
		"Normal Started Pod/trucking/portal-6d8f-zzzzz Started of portal-6d8f-zzzzz",
		"Normal Started Pod/trucking/portal-6d8f-zzzzz Started of portal-6d8f-zzzzz",
		"Normal Pulled Pod/trucking/portal-6d8f-zzzzz Pulled of portal-6d8f-zzzzz",
		"Warning BackOff Pod/trucking/portal-5d8f-x2k4p BackOff of portal-5d8f-x2k4p",
		"Normal SuccessfulCreate ReplicaSet/trucking/portal-5d8f SuccessfulCreate of portal-5d8f",
		"Normal ScalingReplicaSet Deployment/trucking/portal ScalingReplicaSet of portal",
		"Normal Updated Service/trucking/portal Updated of portal",
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("events, newest first (-want +got):\n%s", diff)
	}
}
