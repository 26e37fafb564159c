package shard

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meridian.dev/meridian/fleet"
)

// DNS health shared: the replica that writes Route53 is the only one that reads
// its health checks (Route53 answers GetHealthCheckStatus once a second for the
// whole account); it writes what it read to one ConfigMap, <name>-dns, in the
// Leases' namespace, and the other replicas read that, so that every replica's
// dashboard shows the same DNS health without a request to Route53 of its own.
const (
	// dnsHealthKey is the ConfigMap key holding the shared DNS health.
	dnsHealthKey = "dns.json"
	// roleDNSHealth labels it (LabelRole).
	roleDNSHealth = "dns-health"
)

// dnsHealthReport is the Route53 writer's reading of its endpoints' checks.
type dnsHealthReport struct {
	// Writer is the replica that wrote it; At when, by its clock.
	Writer string    `json:"writer"`
	At     time.Time `json:"at"`
	// Healthy maps each published endpoint's placement (tenant/region/app) to
	// whether Route53's health check passes.
	Healthy map[string]bool `json:"healthy"`
}

func dnsHealthName(name string) string { return name + "-dns" }

// ShareDNSHealth replaces the shared DNS health with healthy: each endpoint
// the Route53 writer published, by placement, and whether its health check
// passes. Only the replica holding the writer's Lease calls it.
func (m *Manager) ShareDNSHealth(ctx context.Context, healthy map[fleet.UnitID]bool) error {
	r := dnsHealthReport{Writer: m.opts.Identity, At: m.clock.Now().UTC(), Healthy: byPlacement(healthy)}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	name := dnsHealthName(m.opts.Name)
	if err := m.putConfigMap(ctx, name, roleDNSHealth, dnsHealthKey, data); err != nil {
		return fmt.Errorf("ConfigMap/%s/%s: sharing DNS health with the other replicas: %w", m.opts.Namespace, name, err)
	}
	return nil
}

// SharedDNSHealth returns the DNS health the Route53 writer shared last and
// when, by the writer's clock, or nil when it shared none yet.
func (m *Manager) SharedDNSHealth(ctx context.Context) (map[fleet.UnitID]bool, time.Time, error) {
	name := dnsHealthName(m.opts.Name)
	cm, err := m.opts.Client.CoreV1().ConfigMaps(m.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ConfigMap/%s/%s: reading the DNS health the Route53 writer shared: %w", m.opts.Namespace, name, err)
	}
	var r dnsHealthReport
	if err := json.Unmarshal([]byte(cm.Data[dnsHealthKey]), &r); err != nil {
		return nil, time.Time{}, fmt.Errorf("ConfigMap/%s/%s: %w", m.opts.Namespace, name, err)
	}
	out := map[fleet.UnitID]bool{}
	for k, healthy := range r.Healthy {
		if u, err := fleet.ParseUnitID(k); err == nil {
			out[u] = healthy
		}
	}
	return out, r.At, nil
}
