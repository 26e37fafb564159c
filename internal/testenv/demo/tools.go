package demo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Scale sets a Deployment's replicas in the cluster of a kubeconfig context, as
// `kubectl scale` does, so the demo needs no kubectl.
func Scale(ctx context.Context, kubeconfig, kubeContext, namespace, deployment string, replicas int32) error {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig %s, context %q: %w", kubeconfig, kubeContext, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: deployment, Namespace: namespace}, Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
	if _, err := client.AppsV1().Deployments(namespace).UpdateScale(ctx, deployment, scale, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("%s: scale Deployment %s/%s: %w", kubeContext, namespace, deployment, err)
	}
	return nil
}

// Resolve asks the DNS server at server (host:port) for name's A records, following
// CNAMEs as the answer gives them, like `dig +short`: one line per record.
func Resolve(server, name string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	resp, _, err := (&dns.Client{Net: "udp", Timeout: 3 * time.Second}).Exchange(m, server)
	if err != nil {
		return nil, fmt.Errorf("DNS query for %s at %s: %w", name, server, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("DNS query for %s at %s: %s", name, server, dns.RcodeToString[resp.Rcode])
	}
	var out []string
	for _, rr := range resp.Answer {
		switch rr := rr.(type) {
		case *dns.CNAME:
			out = append(out, strings.TrimSuffix(rr.Target, "."))
		case *dns.A:
			out = append(out, rr.A.String())
		}
	}
	return out, nil
}
