package shard

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClientConfig reaches the management cluster through a kubeconfig context
// or in-cluster, always with a rate limit that keeps every shard Lease renewed,
// and says what to set when neither works.
func TestClientConfig(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a pod
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: management
  cluster: {server: "https://management.example.com:6443"}
- name: us-east-1
  cluster: {server: "https://us-east-1.example.com:6443"}
users:
- name: meridian
  user: {token: test-token}
contexts:
- name: management
  context: {cluster: management, user: meridian}
- name: us-east-1
  context: {cluster: us-east-1, user: meridian}
current-context: us-east-1
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		opts     ClientOptions
		wantHost string
		wantErr  string
	}{
		{name: "a context", opts: ClientOptions{Kubeconfig: kubeconfig, Context: "management"}, wantHost: "https://management.example.com:6443"},
		{name: "a context the kubeconfig lacks", opts: ClientOptions{Kubeconfig: kubeconfig, Context: "mgmt"},
			wantErr: `kubeconfig context "mgmt": `},
		{name: "no context outside a pod", opts: ClientOptions{Kubeconfig: kubeconfig},
			wantErr: "no kubeconfig context, and not running in a pod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := restConfig(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != tt.wantHost || cfg.QPS != 100 || cfg.Burst != 200 || cfg.Timeout != 10*time.Second {
				t.Errorf("host %s, qps %v, burst %d, timeout %s; want %s, 100, 200, 10s", cfg.Host, cfg.QPS, cfg.Burst, cfg.Timeout, tt.wantHost)
			}
			if _, err := NewClient(tt.opts); err != nil {
				t.Errorf("NewClient: %v", err)
			}
		})
	}
}
