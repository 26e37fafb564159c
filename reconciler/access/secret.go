package access

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"meridian.dev/meridian/fleet"
)

// Secrets reads the kubeconfigs of regions whose spec.cluster.secretRef names a
// Secret in the management cluster, with Meridian's own identity there. Every
// call reads the Secret afresh, so that a rotated Secret is used from the next
// pass without a restart.
type Secrets struct {
	client kubernetes.Interface
}

// NewSecrets reads Secrets through client, a client of the management cluster.
func NewSecrets(client kubernetes.Interface) *Secrets {
	return &Secrets{client: client}
}

// Kubeconfig reads the kubeconfig in the key of the Secret ref names and returns
// the REST configuration of its current context (or of its only context). The
// kubeconfig must carry its credentials itself: one that runs a command (exec,
// auth-provider) or reads files of the daemon's disk is refused. Errors name the
// Secret and key and say what to do; they never quote the Secret's content.
func (s *Secrets) Kubeconfig(ctx context.Context, ref fleet.SecretRef) (*rest.Config, error) {
	where := fmt.Sprintf("Secret %s/%s", ref.Namespace, ref.Name)
	secret, err := s.client.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("%s: not found in the management cluster; create it with the region's kubeconfig under key %q (kubectl create secret generic %s -n %s --from-file=%s=KUBECONFIG_FILE)",
			where, ref.Key, ref.Name, ref.Namespace, ref.Key)
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("%s: Meridian may not read it in the management cluster; grant its service account get on this Secret (a Role in namespace %s)", where, ref.Namespace)
	case err != nil:
		return nil, fmt.Errorf("%s: reading it from the management cluster: %w", where, err)
	}
	data, ok := secret.Data[ref.Key]
	if !ok {
		keys := slices.Sorted(maps.Keys(secret.Data))
		return nil, fmt.Errorf("%s has no key %q (its keys: %s); put the region's kubeconfig under that key or correct spec.cluster.secretRef.key",
			where, ref.Key, orNone(keys))
	}
	cfg, err := restConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s, key %q: %w", where, ref.Key, err)
	}
	return cfg, nil
}

// restConfig is the REST configuration of a kubeconfig held in a Secret. Its
// errors never quote the kubeconfig.
func restConfig(data []byte) (*rest.Config, error) {
	kc, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("does not hold a kubeconfig that parses; store a kubeconfig file there")
	}
	name := kc.CurrentContext
	if name == "" && len(kc.Contexts) == 1 {
		for n := range kc.Contexts {
			name = n
		}
	}
	ctx, ok := kc.Contexts[name]
	if !ok {
		return nil, fmt.Errorf("the kubeconfig has no current-context (and %d contexts); set current-context to the region's", len(kc.Contexts))
	}
	if err := selfContained(name, ctx, kc); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*kc, name, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("the kubeconfig's context %q is not usable; check its cluster and user", name)
	}
	return cfg, nil
}

// selfContained refuses a context whose credentials would come from the
// daemon's machine rather than from the Secret: a command it runs (exec, an
// auth-provider) or a file it reads. A kubeconfig in a Secret may be written by
// someone who must not make Meridian run commands or send its own files.
func selfContained(name string, ctx *clientcmdapi.Context, kc *clientcmdapi.Config) error {
	cluster, ok := kc.Clusters[ctx.Cluster]
	if !ok {
		return fmt.Errorf("the kubeconfig's context %q names cluster %q, which it does not define", name, ctx.Cluster)
	}
	if cluster.CertificateAuthority != "" {
		return fmt.Errorf("the kubeconfig's cluster %q reads its CA from a file; embed it (certificate-authority-data)", ctx.Cluster)
	}
	user, ok := kc.AuthInfos[ctx.AuthInfo]
	if !ok {
		return fmt.Errorf("the kubeconfig's context %q names user %q, which it does not define", name, ctx.AuthInfo)
	}
	var refused []string
	if user.Exec != nil {
		refused = append(refused, "runs a command (exec)")
	}
	if user.AuthProvider != nil {
		refused = append(refused, "uses an auth-provider plugin")
	}
	if user.TokenFile != "" || user.ClientCertificate != "" || user.ClientKey != "" {
		refused = append(refused, "reads files (tokenFile, client-certificate or client-key)")
	}
	if len(refused) > 0 {
		return fmt.Errorf("the kubeconfig's user %q %s, which Meridian does not do for a kubeconfig in a Secret; embed a token or a client certificate and key, or reach an EKS cluster with spec.cluster.eks",
			ctx.AuthInfo, strings.Join(refused, " and "))
	}
	return nil
}

func orNone(keys []string) string {
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ", ")
}
