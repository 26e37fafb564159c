package testbed

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Backend names the Deployment that serves a hostname.
type Backend struct {
	Namespace, Deployment string
}

// Ingress stands in for a region's ingress controller behind its load balancer.
// Local regions run no containers, so nothing would answer a health check; an
// Ingress answers for them, from the cluster's own state: a request for a hostname
// of its routes gets 200 while the Deployment behind it has a ready replica, and
// 503 (naming the Deployment) when it has none or does not exist. Unknown
// hostnames get 404. Route53 health checks of internal/testenv/route53test probe it, so
// scaling a Deployment to zero in one region fails DNS over to another.
type Ingress struct {
	// Addr is the address it listens on, host:port.
	Addr string

	srv *httptest.Server
}

// ServeIngress starts an Ingress for the region on addr (host:port; port 0 picks
// one), over TLS with a self-signed certificate when useTLS is set. route maps a
// request's hostname, lowercase and without a port, to its backend.
func (r *Region) ServeIngress(addr string, useTLS bool, route func(host string) (Backend, bool)) (*Ingress, error) {
	client, err := kubernetes.NewForConfig(r.Config)
	if err != nil {
		return nil, fmt.Errorf("region %s: ingress: %w", r.Name, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("region %s: ingress: %w", r.Name, err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		host := strings.ToLower(req.Host)
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		b, ok := route(host)
		if !ok {
			http.Error(w, "no route for "+host, http.StatusNotFound)
			return
		}
		d, err := client.AppsV1().Deployments(b.Namespace).Get(req.Context(), b.Deployment, metav1.GetOptions{})
		switch {
		case err != nil:
			http.Error(w, fmt.Sprintf("%s: Deployment %s/%s: %v", r.Name, b.Namespace, b.Deployment, err), http.StatusServiceUnavailable)
		case d.Status.ReadyReplicas == 0:
			http.Error(w, fmt.Sprintf("%s: Deployment %s/%s has no ready replica", r.Name, b.Namespace, b.Deployment), http.StatusServiceUnavailable)
		default:
			fmt.Fprintf(w, "%s: Deployment %s/%s has %d ready replicas\n", r.Name, b.Namespace, b.Deployment, d.Status.ReadyReplicas)
		}
	})
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	if useTLS {
		srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	return &Ingress{Addr: l.Addr().String(), srv: srv}, nil
}

// Close stops the Ingress.
func (in *Ingress) Close() {
	if in != nil && in.srv != nil {
		in.srv.Close()
	}
}

// ErrNoLoopbackAlias is returned by LoopbackAddr when the system does not route
// 127.0.0.0/8 to the loopback interface.
var ErrNoLoopbackAlias = errors.New("127.0.0.0/8 is not all loopback here")

// LoopbackAddr returns 127.0.0.<10+i>: a distinct loopback address per region, so
// that regions' ingresses can share a port as load balancers in different
// regions do.
func LoopbackAddr(i int) (string, error) {
	ip := fmt.Sprintf("127.0.0.%d", 10+i)
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoLoopbackAlias, err)
	}
	l.Close()
	return ip, nil
}
