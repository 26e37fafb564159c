package config

import (
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// HA runs several replicas that share the fleet: tenants are sharded across them,
// each shard applied by the one replica holding its Lease in the management
// cluster (docs/ha.md). Absent, one replica applies everything.
type HA struct {
	// KubeconfigContext is the context of Kubeconfig that reaches the management
	// cluster, where the Leases are kept (shard.ClientOptions.Context). Empty means
	// the pod's own service account (in-cluster), as in the Helm chart.
	KubeconfigContext string `yaml:"kubeconfigContext,omitempty"`
	// Namespace holds the Leases. Default POD_NAMESPACE (the chart sets it).
	Namespace string `yaml:"namespace,omitempty"`
	// Name prefixes the Leases, so that two daemons can share a namespace.
	// Default meridian.
	Name string `yaml:"name,omitempty"`
	// Identity names this replica; unique among the live ones. Default POD_NAME,
	// then the host name.
	Identity string `yaml:"identity,omitempty"`
	// LeaseDuration is how long a replica that stopped renewing keeps its shards:
	// a killed replica's tenants move to the others after about this long.
	// Default 15s, at least 3s.
	LeaseDuration Duration `yaml:"leaseDuration,omitempty"`
	// Shards is how many shards tenants hash into; every replica must use the same
	// number. Default 32.
	Shards int `yaml:"shards,omitempty" schema:"min=1,max=1024"`
}

// checkHA applies the defaults of the ha section and checks it; every error names
// its field.
func (c *Config) checkHA(path string) error {
	h := c.HA
	if h == nil {
		return nil
	}
	if h.Namespace == "" {
		h.Namespace = os.Getenv("POD_NAMESPACE")
	}
	if h.Namespace == "" {
		return fmt.Errorf("%s: ha.namespace: not set and POD_NAMESPACE is empty; name the namespace of the Leases", path)
	}
	if h.Name == "" {
		h.Name = "meridian"
	}
	if h.Identity == "" {
		h.Identity = os.Getenv("POD_NAME")
	}
	if h.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("%s: ha.identity: not set, POD_NAME is empty and the host name is unknown (%w); set ha.identity", path, err)
		}
		h.Identity = host
	}
	if errs := validation.IsDNS1123Subdomain(h.Name + "-member-" + h.Identity); len(errs) > 0 {
		return fmt.Errorf("%s: ha.identity %q: with ha.name %q it must make a Lease name: %s", path, h.Identity, h.Name, errs[0])
	}
	if h.LeaseDuration == 0 {
		h.LeaseDuration = Duration(15 * time.Second)
	}
	if time.Duration(h.LeaseDuration) < 3*time.Second {
		return fmt.Errorf("%s: ha.leaseDuration: %s is too short; use 3s or more (15s is usual)", path, time.Duration(h.LeaseDuration))
	}
	if h.Shards == 0 {
		h.Shards = 32
	}
	if h.Shards < 1 || h.Shards > 1024 {
		return fmt.Errorf("%s: ha.shards: %d is out of range; use 1 to 1024", path, h.Shards)
	}
	return nil
}
