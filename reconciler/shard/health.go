package shard

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meridian.dev/meridian/fleet"
)

// Health reports: each replica writes, after each pass, what it found of its
// placements' health to a ConfigMap of its own in the Leases' namespace; the
// replica that writes Route53 reads them all, so that it publishes every
// tenant's placements whichever replica applied them.
const (
	// healthKey is the ConfigMap key holding the report.
	healthKey = "health.json"
	// roleHealth labels the reports (LabelRole).
	roleHealth = "health"
)

// healthReport is one replica's report.
type healthReport struct {
	// Revision is the revision the pass applied; health of another revision
	// says nothing of this one's pods.
	Revision string `json:"revision"`
	// At is when the pass found it, by the reporter's clock.
	At time.Time `json:"at"`
	// Healthy maps placements (tenant/region/app) to whether they were
	// healthy; placements whose health the pass could not read are absent.
	Healthy map[string]bool `json:"healthy"`
}

func healthName(name, identity string) string { return name + "-health-" + identity }

// ReportHealth records what this replica's last pass of revision found of its
// placements' health: healthy maps a placement to true (healthy) or false (found
// unhealthy); placements it could not read are left out. It replaces the
// replica's previous report, and is what the Route53 writer reads with Health.
func (m *Manager) ReportHealth(ctx context.Context, revision string, healthy map[fleet.UnitID]bool) error {
	r := healthReport{Revision: revision, At: m.clock.Now().UTC(), Healthy: byPlacement(healthy)}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	name := healthName(m.opts.Name, m.opts.Identity)
	if err := m.putConfigMap(ctx, name, roleHealth, healthKey, data); err != nil {
		return fmt.Errorf("ConfigMap/%s/%s: reporting placement health for the Route53 writer: %w", m.opts.Namespace, name, err)
	}
	return nil
}

// putConfigMap writes data under key into the ConfigMap name of the Leases'
// namespace, labelled with role, creating it when absent.
func (m *Manager) putConfigMap(ctx context.Context, name, role, key string, data []byte) error {
	cms := m.opts.Client.CoreV1().ConfigMaps(m.opts.Namespace)
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: m.opts.Namespace,
			Labels: map[string]string{LabelRole: role, LabelName: m.opts.Name}}, Data: map[string]string{key: string(data)}}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
	case err == nil:
		cm = cm.DeepCopy()
		cm.Data = map[string]string{key: string(data)}
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	return err
}

// byPlacement keys healthy by the placements' IDs, as the reports keep them.
func byPlacement(healthy map[fleet.UnitID]bool) map[string]bool {
	out := make(map[string]bool, len(healthy))
	for u, ok := range healthy {
		out[u.String()] = ok
	}
	return out
}

// Health reads every replica's health report and returns, for revision, each
// placement's health as last reported. Only the reports of live members count:
// a replica that went away (pod names change at every rollout) leaves its last
// report behind until the leader reaps its member Lease, and what it found then
// says nothing of the tenants another replica holds now. When two live replicas
// reported one placement, as after a shard moved, the tenant's current owner by
// hashing wins, then the newest report. Reports of other revisions are left out:
// a placement absent from the result is of unknown health, and keeps what it has
// in Route53.
func (m *Manager) Health(ctx context.Context, revision string) (map[fleet.UnitID]bool, error) {
	list, err := m.opts.Client.CoreV1().ConfigMaps(m.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelRole + "=" + roleHealth + "," + LabelName + "=" + m.opts.Name})
	if err != nil {
		return nil, fmt.Errorf("ConfigMaps of namespace %s: reading the replicas' health reports: %w", m.opts.Namespace, err)
	}
	members := m.Members()
	type reading struct {
		healthy, owner bool
		at             time.Time
	}
	read := map[fleet.UnitID]reading{}
	for _, cm := range list.Items {
		identity, ok := strings.CutPrefix(cm.Name, healthName(m.opts.Name, ""))
		if !ok || !slices.Contains(members, identity) {
			continue
		}
		var r healthReport
		if err := json.Unmarshal([]byte(cm.Data[healthKey]), &r); err != nil {
			m.log.Warn("health report not readable; ignored", "configMap", cm.Name, "error", err)
			continue
		}
		if r.Revision != revision {
			continue
		}
		for k, healthy := range r.Healthy {
			u, err := fleet.ParseUnitID(k)
			if err != nil {
				continue
			}
			next := reading{healthy: healthy, at: r.At,
				owner: !u.IsAddon() && Owner(Of(u.Tenant, m.opts.Shards), members) == identity}
			if prev, ok := read[u]; ok && (prev.owner && !next.owner || prev.owner == next.owner && !next.at.After(prev.at)) {
				continue
			}
			read[u] = next
		}
	}
	out := make(map[fleet.UnitID]bool, len(read))
	for u, r := range read {
		out[u] = r.healthy
	}
	return out, nil
}

// deleteHealth removes the health report of a replica that left, so that
// reports do not pile up as pods come and go.
func (m *Manager) deleteHealth(ctx context.Context, identity string) {
	name := healthName(m.opts.Name, identity)
	err := m.opts.Client.CoreV1().ConfigMaps(m.opts.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	switch {
	case err == nil:
		m.log.Info("removed the health report of a replica that went away", "configMap", name)
	case !apierrors.IsNotFound(err):
		m.log.Warn("health report of a replica that went away not removed", "configMap", name, "error", err)
	}
}
