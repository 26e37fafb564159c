package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "token", "s3cret-token\n")
	path := write(t, dir, "meridian.yaml", `apiVersion: meridian.dev/v1alpha1
kind: Config
repository:
  url: https://git.example.com/platform/fleet.git
  branch: main
  interval: 30s
  tokenFile: token
kubeconfig: /etc/meridian/kubeconfig
decryption:
  keyFiles: [keys.txt]
cacheDir: cache
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := time.Duration(c.Repository.Interval), 30*time.Second; got != want {
		t.Errorf("interval = %v, want %v", got, want)
	}
	if diff := cmp.Diff([]string{filepath.Join(dir, "keys.txt")}, c.Decryption.KeyFiles); diff != "" {
		t.Errorf("key files (-want +got):\n%s", diff)
	}
	if c.Listen != ":8080" || time.Duration(c.HealthTimeout) != 5*time.Minute || time.Duration(c.DriftInterval) != 10*time.Minute || c.CacheDir != filepath.Join(dir, "cache") || c.StateDir != filepath.Join(dir, "cache", "state") {
		t.Errorf("defaults not applied: %+v", c)
	}
	creds, err := c.Repository.ReadCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if creds.BearerToken != "s3cret-token" || c.Repository.Branch != "main" {
		t.Errorf("repository: token %q, branch %q", creds.BearerToken, c.Repository.Branch)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct{ name, content, want string }{{
		name:    "unknown field, with its line",
		content: "apiVersion: meridian.dev/v1alpha1\nkind: Config\nrepository:\n  url: https://x/y.git\n  branch: main\n  intervall: 1m\n",
		want:    `meridian.yaml:6: repository.intervall: unknown field; did you mean "interval"?`,
	}, {
		name:    "bad duration",
		content: "apiVersion: meridian.dev/v1alpha1\nkind: Config\nrepository:\n  url: https://x/y.git\n  branch: main\n  interval: soon\n",
		want:    `"soon" is not a duration such as 90s or 5m`,
	}, {
		name:    "two references",
		content: "apiVersion: meridian.dev/v1alpha1\nkind: Config\nrepository:\n  url: https://x/y.git\n  branch: main\n  tag: v1\n",
		want:    "meridian.yaml: repository: set exactly one of branch, tag and semver",
	}, {
		name:    "a history ConfigMap without its namespace",
		content: "apiVersion: meridian.dev/v1alpha1\nkind: Config\nrepository:\n  url: https://x/y.git\n  branch: main\nmanagement:\n  historyConfigMap: meridian-status-history\n",
		want:    `meridian.yaml: management.historyConfigMap: "meridian-status-history" is not namespace/name`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Load(write(t, dir, "meridian.yaml", tt.content))
			if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), dir+"/", ""), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestLoadRoute53 applies Route53's defaults and refuses a request rate above
// its per-account quota.
func TestLoadRoute53(t *testing.T) {
	dir := t.TempDir()
	c, err := Load(write(t, dir, "meridian.yaml", `apiVersion: meridian.dev/v1alpha1
kind: Config
repository: {url: https://git.example.com/fleet.git, branch: main}
route53:
  endpoint: http://127.0.0.1:8053
  caFile: certs/ca.pem
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Route53{Endpoint: "http://127.0.0.1:8053", Region: "us-east-1", CAFile: filepath.Join(dir, "certs", "ca.pem"), RequestsPerSecond: 5, RateScale: 1}
	if diff := cmp.Diff(want, c.Route53); diff != "" {
		t.Errorf("route53 (-want +got):\n%s", diff)
	}

	_, err = Load(write(t, dir, "fast.yaml", "apiVersion: meridian.dev/v1alpha1\nkind: Config\nrepository: {url: https://x/y.git, branch: main}\nroute53:\n  requestsPerSecond: 50\n"))
	if want := "fast.yaml:5: route53.requestsPerSecond:"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to contain %q", err, want)
	}
}

// TestKubeAPI reads the per-region request budget, and refuses one that would
// stop Meridian from talking to its regions.
func TestKubeAPI(t *testing.T) {
	dir := t.TempDir()
	head := "apiVersion: meridian.dev/v1alpha1\nkind: Config\nrepository: {url: https://x/y.git, branch: main}\n"
	c, err := Load(write(t, dir, "default.yaml", head))
	if err != nil {
		t.Fatal(err)
	}
	if c.KubeAPI != (KubeAPI{}) {
		t.Errorf("kubeAPI unset = %+v, want zero (the reconciler's defaults)", c.KubeAPI)
	}
	c, err = Load(write(t, dir, "set.yaml", head+"kubeAPI: {qps: 50, burst: 300}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.KubeAPI != (KubeAPI{QPS: 50, Burst: 300}) {
		t.Errorf("kubeAPI = %+v, want qps 50, burst 300", c.KubeAPI)
	}
	_, err = Load(write(t, dir, "zero.yaml", head+"kubeAPI:\n  qps: -1\n"))
	if want := "zero.yaml:5: kubeAPI.qps: -1 is too small; use 1 or more"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to contain %q", err, want)
	}
}

func TestLoadTLS(t *testing.T) {
	dir := t.TempDir()
	write := func(tlsSection string) string {
		p := filepath.Join(dir, "config.yaml")
		data := "apiVersion: meridian.dev/v1alpha1\nkind: Config\nrepository: {url: https://git.example.com/fleet.git, branch: main}\n" + tlsSection
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := Load(write("tls: {certFile: certs/tls.crt, keyFile: /etc/meridian/tls.key}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.CertFile != filepath.Join(dir, "certs/tls.crt") || c.TLS.KeyFile != "/etc/meridian/tls.key" {
		t.Errorf("tls files %+v: want the relative one resolved against the config's directory", c.TLS)
	}
	if _, err := Load(write("tls: {certFile: tls.crt}\n")); err == nil || !strings.Contains(err.Error(), "keyFile") {
		t.Errorf("tls without keyFile: %v, want an error naming keyFile", err)
	}
}

// TestRoute53RateScale reads the scale of Route53's rates: absent is AWS's
// documented limits (1), a fraction or a larger number is kept, and zero, a
// negative number or a non-number is refused naming the field.
func TestRoute53RateScale(t *testing.T) {
	dir := t.TempDir()
	head := "apiVersion: meridian.dev/v1alpha1\nkind: Config\nrepository: {url: https://x/y.git, branch: main}\nroute53:\n"
	for _, tc := range []struct {
		name, yaml string
		want       float64
	}{
		{"default", "  endpoint: http://127.0.0.1:8053\n", 1},
		{"fraction", "  rateScale: 0.5\n", 0.5},
		{"integer", "  rateScale: 20\n", 20},
	} {
		c, err := Load(write(t, dir, tc.name+".yaml", head+tc.yaml))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.Route53.RateScale != tc.want {
			t.Errorf("%s: rateScale = %g, want %g", tc.name, c.Route53.RateScale, tc.want)
		}
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"zero", "  rateScale: 0\n", "zero.yaml:5: route53.rateScale: 0 is too small; use a number above 0"},
		{"negative", "  rateScale: -2\n", "negative.yaml:5: route53.rateScale: -2 is too small; use a number above 0"},
		{"infinite", "  rateScale: .inf\n", "infinite.yaml:5: route53.rateScale: .inf is not a finite number"},
		{"string", "  rateScale: fast\n", `string.yaml:5: route53.rateScale: expected a number, got the string "fast"`},
	} {
		_, err := Load(write(t, dir, tc.name+".yaml", head+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}
