package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// Counter counts Kubernetes API requests by verb. It is safe for concurrent use.
type Counter struct {
	mu     sync.Mutex
	counts map[string]int
}

// NewCounter returns an empty Counter.
func NewCounter() *Counter { return &Counter{counts: map[string]int{}} }

// Add counts one request.
func (c *Counter) Add(verb string) {
	c.mu.Lock()
	c.counts[verb]++
	c.mu.Unlock()
}

// Snapshot returns a copy of the counts.
func (c *Counter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// writeVerbs are the verbs that change something in the cluster.
var writeVerbs = map[string]bool{"CREATE": true, "UPDATE": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

// Writes sums the write verbs of counts (dry runs are counted apart and not here).
func Writes(counts map[string]int) int {
	n := 0
	for verb, c := range counts {
		if writeVerbs[verb] {
			n += c
		}
	}
	return n
}

// Diff returns after − before, per key, leaving out keys that did not change.
func Diff(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// Verb classifies a request to a Kubernetes API server the way the API server's
// apiserver_request_total does: GET of one object, LIST, WATCH, CREATE (POST),
// UPDATE (PUT), PATCH, APPLY (a server-side apply patch), DELETE; a dry run is
// "DRYRUN-<verb>", since it writes nothing; anything outside /api and /apis
// resources (discovery, /version, /openapi) is "DISCOVERY".
func Verb(method string, u *url.URL, contentType string) string {
	verb := ""
	switch method {
	case http.MethodGet, http.MethodHead:
		switch {
		case u.Query().Get("watch") == "true" || u.Query().Get("watch") == "1":
			verb = "WATCH"
		case hasName(u.Path):
			verb = "GET"
		default:
			verb = "LIST"
		}
	case http.MethodPost:
		verb = "CREATE"
	case http.MethodPut:
		verb = "UPDATE"
	case http.MethodPatch:
		verb = "PATCH"
		if strings.HasPrefix(contentType, "application/apply-patch") {
			verb = "APPLY"
		}
	case http.MethodDelete:
		verb = "DELETE"
		if !hasName(u.Path) {
			verb = "DELETECOLLECTION"
		}
	default:
		verb = method
	}
	if resourcePath(u.Path) == nil {
		return "DISCOVERY"
	}
	if u.Query().Get("dryRun") != "" {
		return "DRYRUN-" + verb
	}
	return verb
}

// resourcePath returns the segments of a resource path after its group version —
// [namespaces ns resource name sub] or [resource name sub] — or nil for anything
// else (discovery).
func resourcePath(p string) []string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	var rest []string
	switch {
	case len(segs) >= 3 && segs[0] == "api":
		rest = segs[2:]
	case len(segs) >= 4 && segs[0] == "apis":
		rest = segs[3:]
	default:
		return nil
	}
	return rest
}

// hasName reports whether a resource path names one object.
func hasName(p string) bool {
	rest := resourcePath(p)
	if len(rest) >= 2 && rest[0] == "namespaces" {
		if len(rest) == 2 {
			return true // the namespace object itself
		}
		rest = rest[2:]
	}
	return len(rest) >= 2
}

// Proxy is a TLS reverse proxy in front of one region's API server that counts every
// request passing through it: Meridian's kubeconfig points at it, so the counts are
// Meridian's own requests, seen at the client side of the API server.
type Proxy struct {
	// URL is the proxy's https address; CAPEM its self-signed certificate.
	URL   string
	CAPEM []byte
	// Counts counts the requests by verb.
	Counts *Counter

	srv *http.Server
}

// StartProxy starts a counting proxy to the API server cfg reaches.
func StartProxy(cfg *rest.Config) (*Proxy, error) {
	target, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, err
	}
	upstream, err := rest.TransportFor(&rest.Config{Host: cfg.Host, TLSClientConfig: cfg.TLSClientConfig})
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{URL: "https://" + l.Addr().String(), CAPEM: certPEM, Counts: NewCounter()}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport:     upstream,
		FlushInterval: -1, // watches stream
	}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.Counts.Add(Verb(r.Method, r.URL, r.Header.Get("Content-Type")))
			rp.ServeHTTP(w, r)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 30 * time.Second,
	}
	go func() { _ = p.srv.ServeTLS(l, "", "") }()
	return p, nil
}

// Close stops the proxy.
func (p *Proxy) Close() { _ = p.srv.Close() }

// selfSigned makes a certificate and key for 127.0.0.1.
func selfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "meridian-bench-proxy"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}
