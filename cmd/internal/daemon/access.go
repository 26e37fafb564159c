package daemon

import (
	"context"
	"fmt"

	"k8s.io/client-go/rest"

	"meridian.dev/meridian/config"
	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/access"
	"meridian.dev/meridian/reconciler/shard"
)

// Access is how the daemon (and `meridian plan`) reach regions that are not a
// context of its kubeconfig: Secrets of the management cluster, read with the
// daemon's own identity there (in-cluster, or management.kubeconfigContext),
// and EKS clusters, reached with the AWS identity of the eks section. Access
// the configuration cannot give fails only the regions that need it, each with
// the reason.
func Access(ctx context.Context, cfg *config.Config) reconciler.Access {
	var acc reconciler.Access
	client, err := shard.NewClient(shard.ClientOptions{Kubeconfig: cfg.Kubeconfig, Context: cfg.Management.KubeconfigContext})
	if err != nil {
		acc.Secrets = noSecrets{err}
	} else {
		acc.Secrets = access.NewSecrets(client)
	}
	aws, err := access.LoadAWS(ctx, cfg.EKS.Profile, cfg.EKS.CAFile)
	if err != nil {
		acc.EKS = noEKS{err}
	} else {
		acc.EKS = access.NewEKS(access.EKSOptions{AWS: aws, EKSEndpoint: cfg.EKS.Endpoint, STSEndpoint: cfg.EKS.STSEndpoint})
	}
	return acc
}

// noSecrets stands for a management cluster the configuration does not reach.
type noSecrets struct{ err error }

func (n noSecrets) Kubeconfig(_ context.Context, ref fleet.SecretRef) (*rest.Config, error) {
	return nil, fmt.Errorf("Secret %s/%s: no management cluster to read it from (management.kubeconfigContext of the configuration file): %w", ref.Namespace, ref.Name, n.err)
}

// noEKS stands for an AWS configuration that does not load.
type noEKS struct{ err error }

func (n noEKS) Config(_ context.Context, c fleet.EKSCluster, awsRegion string) (*rest.Config, error) {
	return nil, fmt.Errorf("EKS cluster %q in %s: no AWS access (eks section of the configuration file): %w", c.Name, awsRegion, n.err)
}
