package daemon

import (
	"context"
	"fmt"
	"maps"
	"regexp"
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

// eventsPage and maxEventPages bound what is read of a namespace's events: the
// API lists them by name, not by time, so every page is read, up to the cap.
var eventsPage int64 = 500

const maxEventPages = 10

// workloads are the kinds whose events are mostly their children's, and the
// shapes of the names the children take after the workload's name and a dash:
// a Deployment's ReplicaSets "web-7c9f4" (its pod-template-hash) and their Pods
// "web-7c9f4-x2k4p"; a StatefulSet's Pods "db-0"; a DaemonSet's and a Job's
// Pods "agent-x2k4p"; a CronJob's Jobs "report-29012345" and their Pods
// "report-29012345-x2k4p". The random parts use Kubernetes's alphabet without
// vowels, so "portal-admin-…" is never taken for a child of "portal".
var workloads = map[string]map[string]*regexp.Regexp{
	"Deployment": {
		"ReplicaSet": regexp.MustCompile(`^` + hash + `$`),
		"Pod":        regexp.MustCompile(`^` + hash + `-` + suffix + `$`),
	},
	"StatefulSet": {"Pod": regexp.MustCompile(`^[0-9]+$`)},
	"DaemonSet":   {"Pod": regexp.MustCompile(`^` + suffix + `$`)},
	"Job":         {"Pod": regexp.MustCompile(`^` + suffix + `$`)},
	"CronJob": {
		"Job": regexp.MustCompile(`^[0-9]+$`),
		"Pod": regexp.MustCompile(`^[0-9]+-` + suffix + `$`),
	},
}

// hash and suffix are the random parts of the names Kubernetes gives: a
// pod-template-hash, and the five characters of a generated name.
const (
	hash   = `[bcdfghjklmnpqrstvwxz2456789]{1,10}`
	suffix = `[bcdfghjklmnpqrstvwxz2456789]{5}`
)

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
// and Jobs it made — unless another unit's workload, whose name is longer, made
// them. Events of cluster-scoped objects are not read.
func (e *regionEvents) read(ctx context.Context, unit fleet.UnitID, objects, others []plan.ObjectRef) ([]status.KubeEvent, error) {
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
	otherWorkloads := map[string][]plan.ObjectRef{}
	for _, o := range others {
		if workloads[o.Kind] != nil {
			otherWorkloads[o.Namespace] = append(otherWorkloads[o.Namespace], o)
		}
	}
	var out []status.KubeEvent
	for _, ns := range slices.Sorted(maps.Keys(byNamespace)) {
		opts := metav1.ListOptions{Limit: eventsPage}
		for page := 0; page < maxEventPages; page++ {
			list, err := client.CoreV1().Events(ns).List(ctx, opts)
			if err != nil {
				return nil, fmt.Errorf("region %s: events of namespace %s: %w", unit.Region, ns, err)
			}
			for _, ev := range list.Items {
				if concerns(byNamespace[ns], otherWorkloads[ns], ev.InvolvedObject) {
					out = append(out, kubeEvent(ev))
				}
			}
			if opts.Continue = list.Continue; opts.Continue == "" {
				break
			}
		}
	}
	slices.SortStableFunc(out, func(a, b status.KubeEvent) int { return b.Last.Compare(a.Last) })
	if len(out) > maxEvents {
		out = out[:maxEvents]
	}
	return out, nil
}

// concerns reports whether an event about obj concerns one of the objects: it
// is one of them, or the child of one of their workloads that no workload of
// others, with a longer name, could have made instead.
func concerns(objects, others []plan.ObjectRef, obj corev1.ObjectReference) bool {
	var parent string
	for _, o := range objects {
		if o.Kind == obj.Kind && o.Name == obj.Name {
			return true
		}
		if madeBy(o, obj) && len(o.Name) > len(parent) {
			parent = o.Name
		}
	}
	if parent == "" {
		return false
	}
	for _, o := range others {
		if len(o.Name) > len(parent) && madeBy(o, obj) {
			return false
		}
	}
	return true
}

// madeBy reports whether obj's name is one workload w gives its children.
func madeBy(w plan.ObjectRef, obj corev1.ObjectReference) bool {
	shape := workloads[w.Kind][obj.Kind]
	rest, ok := strings.CutPrefix(obj.Name, w.Name+"-")
	return shape != nil && ok && shape.MatchString(rest)
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
