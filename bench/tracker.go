package main

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/inventory"
	"meridian.dev/meridian/reconciler/plan"
)

// Tracker watches the regions directly (not through the counting proxies): the
// Deployments of every namespace and Meridian's inventories, so the harness sees
// the moment a condition holds without polling.
type Tracker struct {
	mu      sync.Mutex
	changed chan struct{}
	// deployments by region, then namespace/name.
	deployments map[string]map[string]*appsv1.Deployment
	// applied by region: unit → digest recorded after its apply ("" before).
	inventories map[string]map[fleet.UnitID]string
	// lastCreated is when the tracker last saw a Deployment it had not seen:
	// with every Deployment there, when the last of them was created.
	lastCreated time.Time
	stop        context.CancelFunc
}

// StartTracker starts watching each region (name → admin config).
func StartTracker(ctx context.Context, regions map[string]*rest.Config) (*Tracker, error) {
	ctx, cancel := context.WithCancel(ctx)
	t := &Tracker{changed: make(chan struct{}, 1), deployments: map[string]map[string]*appsv1.Deployment{}, inventories: map[string]map[fleet.UnitID]string{}, stop: cancel}
	var syncs []cache.InformerSynced
	for name, cfg := range regions {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			cancel()
			return nil, err
		}
		t.deployments[name] = map[string]*appsv1.Deployment{}
		t.inventories[name] = map[fleet.UnitID]string{}
		all := informers.NewSharedInformerFactory(cs, 0)
		dep := all.Apps().V1().Deployments().Informer()
		_, _ = dep.AddEventHandler(t.handler(name, t.onDeployment))
		inv := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(inventory.Namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = inventory.LabelInventory }))
		cm := inv.Core().V1().ConfigMaps().Informer()
		_, _ = cm.AddEventHandler(t.handler(name, t.onInventory))
		all.Start(ctx.Done())
		inv.Start(ctx.Done())
		syncs = append(syncs, dep.HasSynced, cm.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), syncs...) {
		cancel()
		return nil, ctx.Err()
	}
	return t, nil
}

// Stop stops watching.
func (t *Tracker) Stop() { t.stop() }

func (t *Tracker) handler(region string, on func(region string, obj any, deleted bool)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { on(region, obj, false) },
		UpdateFunc: func(_, obj any) { on(region, obj, false) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			on(region, obj, true)
		},
	}
}

func (t *Tracker) onDeployment(region string, obj any, deleted bool) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	t.mu.Lock()
	if deleted {
		delete(t.deployments[region], d.Namespace+"/"+d.Name)
	} else {
		if _, ok := t.deployments[region][d.Namespace+"/"+d.Name]; !ok {
			t.lastCreated = time.Now()
		}
		t.deployments[region][d.Namespace+"/"+d.Name] = d
	}
	t.mu.Unlock()
	t.notify()
}

func (t *Tracker) onInventory(region string, obj any, deleted bool) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return
	}
	var inv plan.Inventory
	if err := json.Unmarshal([]byte(cm.Data[inventory.DataKey]), &inv); err != nil {
		return
	}
	t.mu.Lock()
	if deleted {
		delete(t.inventories[region], inv.Unit)
	} else {
		t.inventories[region][inv.Unit] = inv.Digest
	}
	t.mu.Unlock()
	t.notify()
}

func (t *Tracker) notify() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// Wait blocks until cond holds (checked under the tracker's lock after every change)
// or ctx ends, and returns when it first saw it hold.
func (t *Tracker) Wait(ctx context.Context, cond func(*Tracker) bool) (time.Time, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		t.mu.Lock()
		ok := cond(t)
		t.mu.Unlock()
		if ok {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-t.changed:
		case <-tick.C:
		}
	}
}

// Applied counts, over all regions, the units whose inventory records a digest:
// their objects were applied. Call it within Wait.
func (t *Tracker) Applied() int {
	n := 0
	for _, units := range t.inventories {
		for _, digest := range units {
			if digest != "" {
				n++
			}
		}
	}
	return n
}

// Deployments counts the Deployments over all regions, and those that are ready:
// the controller saw their latest generation and every replica is updated, ready
// and available. Call it within Wait.
func (t *Tracker) Deployments() (total, ready int) {
	for _, deps := range t.deployments {
		for _, d := range deps {
			total++
			if deploymentReady(d) {
				ready++
			}
		}
	}
	return total, ready
}

// Created returns when the last of at least n Deployments appeared, and whether
// there are n: the moment every placement's Deployment had been created, seen
// alike for Meridian and Flux. Call it within Wait.
func (t *Tracker) Created(n int) (time.Time, bool) {
	total, _ := t.Deployments()
	return t.lastCreated, total >= n
}

func deploymentReady(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.ReadyReplicas == want && s.AvailableReplicas == want && s.Replicas == want
}

// DeploymentReplicas reports, for every region, whether the Deployment
// namespace/name has spec.replicas == replicas (and, with ready, is also ready).
// Call it within Wait.
func (t *Tracker) DeploymentReplicas(regions []string, namespace, name string, replicas int32, ready bool) bool {
	for _, r := range regions {
		d, ok := t.deployments[r][namespace+"/"+name]
		if !ok || d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
			return false
		}
		if ready && !deploymentReady(d) {
			return false
		}
	}
	return true
}
