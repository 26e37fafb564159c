package shard

import (
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ClientOptions say how to reach the management cluster, where the Leases are
// kept.
type ClientOptions struct {
	// Kubeconfig is the kubeconfig file; empty means the default loading rules
	// (KUBECONFIG, ~/.kube/config).
	Kubeconfig string
	// Context is the kubeconfig context of the management cluster. Empty means
	// in-cluster: the pod's own service account, as in the Helm chart.
	Context string
}

// NewClient returns a client of the management cluster fit for
// Options.Client: each renewal updates every shard Lease a replica holds, so
// it allows 100 requests a second (burst 200) where client-go's default of 5
// would let Leases expire, and a request that hangs gives up after 10s.
func NewClient(opts ClientOptions) (kubernetes.Interface, error) {
	cfg, err := restConfig(opts)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// restConfig is the REST configuration of NewClient.
func restConfig(opts ClientOptions) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if opts.Context != "" {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if opts.Kubeconfig != "" {
			rules.ExplicitPath = opts.Kubeconfig
		}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: opts.Context}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("kubeconfig context %q: %w; add the management cluster's context to the kubeconfig", opts.Context, err)
		}
	} else if cfg, err = rest.InClusterConfig(); err != nil {
		return nil, fmt.Errorf("no kubeconfig context, and not running in a pod (%w); name the management cluster's context", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.QPS, cfg.Burst = 100, 200
	return cfg, nil
}
