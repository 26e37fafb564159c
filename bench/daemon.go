package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"meridian.dev/meridian/sources"
)

// webhookSecret is the generic webhook secret the harness configures; it protects
// nothing but a throwaway daemon on loopback.
const webhookSecret = "bench-webhook-secret-0123456789"

// Daemon is `meridian run` running as its own process, so that its CPU time and
// peak RSS are its own.
type Daemon struct {
	cmd    *exec.Cmd
	addr   string
	log    string
	done   chan struct{}
	err    error
	Start  time.Time
	config string
}

// DaemonOptions say how to run the daemon.
type DaemonOptions struct {
	Binary, Dir, RepoURL, Kubeconfig, KeyFile, Route53URL string
	// HealthTimeout is the daemon's healthTimeout.
	HealthTimeout time.Duration
	// KubeQPS is the daemon's kubeAPI.qps (burst twice that); 0 leaves its default.
	KubeQPS int
	// Route53RateScale is the daemon's route53.rateScale, the test server's
	// RateScale; 0 leaves the default (Route53's documented rates).
	Route53RateScale float64
	// GoMemLimit is the daemon's GOMEMLIMIT; empty leaves it unset.
	GoMemLimit string
	// GoGC is the daemon's GOGC; empty leaves it unset.
	GoGC string
}

// writeConfig writes the daemon's configuration file into opts.Dir, listening on
// listen, and returns its path.
func writeConfig(opts DaemonOptions, listen string) (string, error) {
	secretFile := filepath.Join(opts.Dir, "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(webhookSecret), 0o600); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`apiVersion: meridian.dev/v1alpha1
kind: Config
repository:
  url: %s
  branch: main
  interval: 1h
  genericSecretFile: %s
kubeconfig: %s
decryption:
  keyFiles: [%s]
cacheDir: %s
listen: %s
profiling: true
healthTimeout: %s
driftInterval: 24h
route53:
  endpoint: %s
  requestsPerSecond: 5
`, opts.RepoURL, secretFile, opts.Kubeconfig, opts.KeyFile, filepath.Join(opts.Dir, "cache"), listen, opts.HealthTimeout, opts.Route53URL)
	if opts.Route53RateScale > 0 {
		cfg += fmt.Sprintf("  rateScale: %g\n", opts.Route53RateScale)
	}
	if opts.KubeQPS > 0 {
		cfg += fmt.Sprintf("kubeAPI: {qps: %d, burst: %d}\n", opts.KubeQPS, 2*opts.KubeQPS)
	}
	config := filepath.Join(opts.Dir, "meridian.yaml")
	return config, os.WriteFile(config, []byte(cfg), 0o600)
}

// StartDaemon writes the daemon's configuration into opts.Dir and starts it.
func StartDaemon(opts DaemonOptions) (*Daemon, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	config, err := writeConfig(opts, addr)
	if err != nil {
		return nil, err
	}
	logFile := filepath.Join(opts.Dir, "meridian.log")
	logf, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(opts.Binary, "run", "--config", config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = daemonEnv()
	if opts.GoMemLimit != "" {
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+opts.GoMemLimit)
	}
	if opts.GoGC != "" {
		cmd.Env = append(cmd.Env, "GOGC="+opts.GoGC)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	d := &Daemon{cmd: cmd, addr: addr, log: logFile, done: make(chan struct{}), config: config}
	d.Start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// daemonEnv is the harness's environment for the daemon, with static credentials
// for the Route53 test server (which accepts any) and no AWS settings of the
// person running it.
func daemonEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "SOPS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "AWS_ACCESS_KEY_ID=BENCH", "AWS_SECRET_ACCESS_KEY=bench-only-not-a-secret", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
}

// PID is the daemon's process id.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Stop sends SIGTERM and waits for the daemon to exit.
func (d *Daemon) Stop() error {
	select {
	case <-d.done:
		return d.err
	default:
	}
	terminate(d.cmd.Process, d.done, 90*time.Second)
	return nil
}

// terminate sends p SIGTERM and waits for done, killing p after grace.
func terminate(p *os.Process, done <-chan struct{}, grace time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = p.Kill()
		<-done
	}
}

// Exited reports an error when the daemon is no longer running.
func (d *Daemon) Exited() error {
	select {
	case <-d.done:
		return fmt.Errorf("meridian exited: %v; log:\n%s", d.err, d.LogTail(30))
	default:
		return nil
	}
}

// LogTail returns the last n lines of the daemon's log.
func (d *Daemon) LogTail(n int) string {
	data, _ := os.ReadFile(d.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogCount counts the daemon's log lines holding s.
func (d *Daemon) LogCount(s string) int {
	data, _ := os.ReadFile(d.log)
	return bytes.Count(data, []byte(`"msg":"`+s+`"`))
}

// LastPassRendered returns how many placements the daemon's last finished pass
// rendered, from its "pass finished" log line; false when no pass finished.
func (d *Daemon) LastPassRendered() (int, bool) {
	data, _ := os.ReadFile(d.log)
	n, found := 0, false
	for line := range bytes.Lines(data) {
		var l struct {
			Msg      string `json:"msg"`
			Rendered *int   `json:"rendered"`
		}
		if json.Unmarshal(line, &l) != nil || !strings.HasPrefix(l.Msg, "pass finished") || l.Rendered == nil {
			continue
		}
		n, found = *l.Rendered, true
	}
	return n, found
}

// Trigger calls the daemon's webhook, as a git host does after a push.
func (d *Daemon) Trigger(ctx context.Context) error {
	body := []byte(`{"ref":"refs/heads/main"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+d.addr+"/hooks/git", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set(sources.HeaderSignature, sources.SignBody(webhookSecret, body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("webhook: %s", resp.Status)
	}
	return nil
}

// WaitReady waits until /readyz answers 200: the first pass has finished.
func (d *Daemon) WaitReady(ctx context.Context) (time.Time, error) {
	return d.poll(ctx, func() bool {
		resp, err := http.Get("http://" + d.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Passes counts the passes the daemon finished, converged or not.
func (d *Daemon) Passes() int {
	return d.LogCount("pass finished") + d.LogCount("pass finished with problems")
}

// WaitPasses waits until the daemon finished more than n passes.
func (d *Daemon) WaitPasses(ctx context.Context, n int) (time.Time, error) {
	return d.poll(ctx, func() bool { return d.Passes() > n })
}

// WaitLog waits until the daemon's log holds more than n lines with message msg.
func (d *Daemon) WaitLog(ctx context.Context, msg string, n int) (time.Time, error) {
	return d.poll(ctx, func() bool { return d.LogCount(msg) > n })
}

func (d *Daemon) poll(ctx context.Context, cond func() bool) (time.Time, error) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if cond() {
			return time.Now(), nil
		}
		if err := d.Exited(); err != nil {
			return time.Time{}, err
		}
		select {
		case <-ctx.Done():
			return time.Time{}, errors.Join(ctx.Err(), errors.New(d.LogTail(20)))
		case <-t.C:
		}
	}
}

// writeProxyKubeconfig writes a kubeconfig with one context per region that reaches
// its API server through the region's counting proxy, as the cluster admin.
func writeProxyKubeconfig(path string, regions []*benchRegion) error {
	return clientcmd.WriteToFile(*proxyKubeconfig(regions), path)
}

// proxyKubeconfig is the kubeconfig writeProxyKubeconfig writes; its current
// context is the first region's.
func proxyKubeconfig(regions []*benchRegion) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	for _, r := range regions {
		cfg.Clusters[r.Name] = &clientcmdapi.Cluster{Server: r.Proxy.URL, CertificateAuthorityData: r.Proxy.CAPEM}
		cfg.AuthInfos[r.Name] = &clientcmdapi.AuthInfo{Token: r.Config.BearerToken}
		cfg.Contexts[r.Name] = &clientcmdapi.Context{Cluster: r.Name, AuthInfo: r.Name}
	}
	cfg.CurrentContext = regions[0].Name
	return cfg
}
