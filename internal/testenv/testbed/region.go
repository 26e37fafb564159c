package testbed

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// How long a region's steps may take. Three regions starting at once on two
// busy cores are much slower than one region on an idle machine (~2 s).
const (
	etcdTimeout      = time.Minute
	apiserverTimeout = 3 * time.Minute
	nodesTimeout     = 3 * time.Minute
)

// Files in a region's directory.
const (
	saKeyFile     = "sa.key"
	saPubFile     = "sa.pub"
	tokenFile     = "tokens.csv"
	certDir       = "certs"
	servingCert   = "certs/apiserver.crt" // written by kube-apiserver
	kwokHome      = "kwok-home"
	regionMarker  = ".meridian-testbed"
	serviceIPCIDR = "10.0.0.0/16"
)

// startRegion starts one region's components and waits until it is usable.
func (tb *Testbed) startRegion(ctx context.Context, r *Region) error {
	if err := os.MkdirAll(filepath.Join(r.Dir, certDir), 0o700); err != nil {
		return fmt.Errorf("region %s: %w", r.Name, err)
	}
	if err := os.WriteFile(filepath.Join(r.Dir, regionMarker), nil, 0o644); err != nil {
		return fmt.Errorf("region %s: %w", r.Name, err)
	}
	if err := writeServiceAccountKeys(r.Dir); err != nil {
		return fmt.Errorf("region %s: service account keys: %w", r.Name, err)
	}
	token := hex.EncodeToString(randomBytes(24))
	// token,user,uid,"groups"
	line := token + `,meridian-admin,meridian-admin,"system:masters"` + "\n"
	if err := os.WriteFile(filepath.Join(r.Dir, tokenFile), []byte(line), 0o600); err != nil {
		return fmt.Errorf("region %s: token file: %w", r.Name, err)
	}
	r.Server = "https://127.0.0.1:" + strconv.Itoa(r.ports.APIServer)

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(r.ports.EtcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(r.ports.EtcdPeer)
	etcd, err := tb.startProcess(r, Etcd,
		"--name="+r.Name,
		"--data-dir="+filepath.Join(r.Dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster="+r.Name+"="+peerURL,
		"--unsafe-no-fsync=true", // throwaway data; fsync is most of etcd's latency on a busy disk
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	err = waitFor(ctx, etcd, etcdTimeout, "/health", func() error {
		return httpOK(ctx, http.DefaultClient, etcdURL+"/health", "")
	})
	if err != nil {
		return err
	}

	apiserver, err := tb.startProcess(r, KubeAPIServer, append([]string{
		"--etcd-servers=" + etcdURL,
		"--secure-port=" + strconv.Itoa(r.ports.APIServer),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(r.Dir, certDir),
		"--service-account-issuer=" + r.Server,
		"--service-account-key-file=" + filepath.Join(r.Dir, saPubFile),
		"--service-account-signing-key-file=" + filepath.Join(r.Dir, saKeyFile),
		"--token-auth-file=" + filepath.Join(r.Dir, tokenFile),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=" + serviceIPCIDR,
	}, tb.opts.APIServerFlags...)...,
	)
	if err != nil {
		return err
	}
	var ca []byte
	err = waitFor(ctx, apiserver, apiserverTimeout, "/readyz", func() error {
		if ca == nil {
			data, err := os.ReadFile(filepath.Join(r.Dir, servingCert))
			if err != nil {
				return fmt.Errorf("no serving certificate yet: %w", err)
			}
			if block, _ := pem.Decode(data); block == nil {
				return errors.New("serving certificate not written yet")
			}
			ca = data
		}
		client, err := tlsClient(ca)
		if err != nil {
			ca = nil // maybe read while half written
			return err
		}
		return httpOK(ctx, client, r.Server+"/readyz", token)
	})
	if err != nil {
		return err
	}

	r.Kubeconfig = filepath.Join(r.Dir, "kubeconfig")
	if err := writeRegionKubeconfig(r.Kubeconfig, r.Name, r.Server, ca, token); err != nil {
		return fmt.Errorf("region %s: %w", r.Name, err)
	}
	r.Config = &rest.Config{
		Host:            r.Server,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS:             50,
		Burst:           100,
	}
	if !tb.opts.Workloads {
		return nil
	}

	kubeconfig := "--kubeconfig=" + r.Kubeconfig
	_, err = tb.startProcess(r, KubeControllerManager,
		kubeconfig,
		"--authentication-kubeconfig="+r.Kubeconfig,
		"--authorization-kubeconfig="+r.Kubeconfig,
		"--service-account-private-key-file="+filepath.Join(r.Dir, saKeyFile),
		"--root-ca-file="+filepath.Join(r.Dir, servingCert),
		"--leader-elect=false",
		"--secure-port=0",
		// kwok heartbeats its nodes every 20-45s (kwokStageDirs), within the
		// default 50s grace period, but on two busy cores a heartbeat can be
		// late; a node found not Ready has every pod marked not Ready for good
		// (kwok does not mark them Ready again). Fake nodes do not fail; only
		// their heartbeat can be late.
		"--node-monitor-grace-period=10m",
	)
	if err != nil {
		return err
	}
	_, err = tb.startProcess(r, KubeScheduler,
		kubeconfig,
		"--authentication-kubeconfig="+r.Kubeconfig,
		"--authorization-kubeconfig="+r.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
	)
	if err != nil {
		return err
	}
	_, err = tb.startProcess(r, Kwok,
		kubeconfig,
		"--config="+tb.bins.KwokStages,
		"--manage-all-nodes=true",
	)
	if err != nil {
		return err
	}
	return tb.addNodes(ctx, r)
}

// startProcess starts component c of region r with its output in its log.
func (tb *Testbed) startProcess(r *Region, c Component, args ...string) (*process, error) {
	logPath := r.LogFile(c)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("region %s: %s: %w", r.Name, c, err)
	}
	defer logf.Close()
	cmd := exec.Command(tb.bins.Path(c), args...)
	cmd.Dir = r.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = childAttr(tb.opts.Detached)
	if c == Kwok {
		// kwok also reads ~/.kwok/kwok.yaml; keep a person's own out of it.
		home := filepath.Join(r.Dir, kwokHome)
		if err := os.MkdirAll(home, 0o755); err != nil {
			return nil, fmt.Errorf("region %s: %s: %w", r.Name, c, err)
		}
		cmd.Env = append(os.Environ(), "HOME="+home)
	}
	if tb.spawner != nil {
		err = tb.spawner.start(cmd)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return nil, fmt.Errorf("region %s: %s: start: %w", r.Name, c, err)
	}
	p := &process{comp: c, region: r.Name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	tb.mu.Lock()
	tb.procs = append(tb.procs, p)
	tb.mu.Unlock()
	r.procs = append(r.procs, p)
	return p, nil
}

// waitFor polls check until it succeeds, p exits, ctx ends or timeout passes.
// Its errors name the region, the component and what was awaited, and carry
// the tail of the component's log.
func waitFor(ctx context.Context, p *process, timeout time.Duration, what string, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return p.exitError()
		case <-ctx.Done():
			return fmt.Errorf("region %s: %s: %s not ready: %w (last: %v)%s", p.region, p.comp, what, ctx.Err(), last, logTail(p.log))
		case <-tick.C:
		}
	}
}

// httpOK GETs url and wants 200.
func httpOK(ctx context.Context, client *http.Client, url, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	return nil
}

// tlsClient trusts only the given PEM certificates.
func tlsClient(caPEM []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("serving certificate has no usable certificate")
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		Proxy:           nil,
	}}, nil
}

// writeServiceAccountKeys writes the RSA key pair that signs and verifies
// service account tokens.
func writeServiceAccountKeys(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(filepath.Join(dir, saKeyFile), priv, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, saPubFile), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// writeRegionKubeconfig writes a kubeconfig whose only context, named after
// the region, reaches its apiserver as a cluster admin.
func writeRegionKubeconfig(path, name, server string, ca []byte, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return nil
}

// addNodes creates the region's fake Nodes, which kwok then runs, and waits
// until they are Ready and the node lifecycle controller has lifted their
// not-ready taint, so Pods can be scheduled on them.
func (tb *Testbed) addNodes(ctx context.Context, r *Region) error {
	cs, err := kubernetes.NewForConfig(r.Config)
	if err != nil {
		return fmt.Errorf("region %s: nodes: %w", r.Name, err)
	}
	for i := range tb.opts.Nodes {
		name := fmt.Sprintf("%s-node-%d", r.Name, i+1)
		zone := fmt.Sprintf("%s%c", r.Name, 'a'+i%3)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname":        name,
				"kubernetes.io/os":              "linux",
				"kubernetes.io/arch":            "amd64",
				"topology.kubernetes.io/region": r.Name,
				"topology.kubernetes.io/zone":   zone,
				"type":                          "kwok",
			},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
		}}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("region %s: node %s: %w", r.Name, name, err)
		}
	}
	kcm := r.process(KubeControllerManager)
	var last string
	err = waitFor(ctx, r.process(Kwok), nodesTimeout, "nodes", func() error {
		if kcm.exited() {
			return nil // reported below
		}
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := 0
		for _, n := range nodes.Items {
			if nodeSchedulable(&n) {
				ready++
			}
		}
		if ready < tb.opts.Nodes {
			last = fmt.Sprintf("%d of %d nodes Ready and untainted", ready, tb.opts.Nodes)
			return errors.New(last)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if kcm.exited() {
		return kcm.exitError()
	}
	return nil
}

// nodeSchedulable reports whether a Node is Ready and free of the taints
// that keep Pods off nodes that are not ready.
func nodeSchedulable(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return false
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// process returns the region's running component c, or nil.
func (r *Region) process(c Component) *process {
	for _, p := range r.procs {
		if p.comp == c {
			return p
		}
	}
	return nil
}
