package daemon

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/reconciler/status"
)

// maxEvents bounds the events the dashboard shows of one unit, newest first.
const maxEvents = 100

// workloads are the kinds whose events are mostly their children's: a
// Deployment's ReplicaSets and Pods are named after it ("web-7c9f",
// "web-7c9f-x2k4p"), as a StatefulSet's, a DaemonSet's, a Job's and a CronJob's
// Pods and Jobs are.
var workloads = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true, "Job": true, "CronJob": true}

// regionEvents reads the Kubernetes events of a unit's objects from its region,
// with the rest.Config the reconciler last connected to the region with.
type regionEvents struct {
	mu      sync.Mutex
	regions map[string]*regionClient
}

// regionClient is one region's client and the config it was built from.
type regionClient struct {
	cfg    *rest.Config
	client kubernetes.Interface
}

func newRegionEvents() *regionEvents {
	return &regionEvents{regions: map[string]*regionClient{}}
}

// connected records how to reach a region (reconciler.RunOptions.Connected).
func (e *regionEvents) connected(region string, cfg *rest.Config) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.regions[region] = &regionClient{cfg: cfg}
}

// client returns the region's client, built on first use.
func (e *regionEvents) client(region string) (kubernetes.Interface, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rc, ok := e.regions[region]
	if !ok {
		return nil, fmt.Errorf("region %s: not connected yet; events are read once a pass reached the region", region)
	}
	if rc.client == nil {
		c, err := kubernetes.NewForConfig(rc.cfg)
		if err != nil {
			return nil, fmt.Errorf("region %s: %w", region, err)
		}
		rc.client = c
	}
	return rc.client, nil
}

// read is a status.EventReader: the events, in each namespace of the unit's
// objects, that concern one of them or, for a workload, the ReplicaSets, Pods
// and Jobs named after it. Events of cluster-scoped objects are not read.
func (e *regionEvents) read(ctx context.Context, unit fleet.UnitID, objects []plan.ObjectRef) ([]status.KubeEvent, error) {
	client, err := e.client(unit.Region)
	if err != nil {
		return nil, err
	}
	byNamespace := map[string][]plan.ObjectRef{}
	for _, o := range objects {
		if o.Namespace != "" {
			byNamespace[o.Namespace] = append(byNamespace[o.Namespace], o)
		}
	}
	var out []status.KubeEvent
	for _, ns := range slices.Sorted(maps.Keys(byNamespace)) {
		list, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("region %s: events of namespace %s: %w", unit.Region, ns, err)
		}
		for _, ev := range list.Items {
			if concerns(byNamespace[ns], ev.InvolvedObject) {
				out = append(out, kubeEvent(ev))
			}
		}
	}
	slices.SortStableFunc(out, func(a, b status.KubeEvent) int { return b.Last.Compare(a.Last) })
	if len(out) > maxEvents {
		out = out[:maxEvents]
	}
	return out, nil
}

// concerns reports whether an event about obj concerns one of the objects.
func concerns(objects []plan.ObjectRef, obj corev1.ObjectReference) bool {
	for _, o := range objects {
		if o.Kind == obj.Kind && o.Name == obj.Name {
			return true
		}
		if workloads[o.Kind] && strings.HasPrefix(obj.Name, o.Name+"-") && (obj.Kind == "ReplicaSet" || obj.Kind == "Pod" || obj.Kind == "Job") {
			return true
		}
	}
	return false
}

// kubeEvent is what the dashboard shows of an event.
func kubeEvent(ev corev1.Event) status.KubeEvent {
	last := ev.LastTimestamp.Time
	if ev.Series != nil && ev.Series.LastObservedTime.After(last) {
		last = ev.Series.LastObservedTime.Time
	}
	if last.IsZero() {
		last = ev.EventTime.Time
	}
	if last.IsZero() {
		last = ev.CreationTimestamp.Time
	}
	count := ev.Count
	if ev.Series != nil && ev.Series.Count > count {
		count = ev.Series.Count
	}
	obj := ev.InvolvedObject
	return status.KubeEvent{
		Type: ev.Type, Reason: ev.Reason, Object: obj.Kind + "/" + obj.Namespace + "/" + obj.Name,
		Message: ev.Message, Count: count, Last: last,
	}
}
