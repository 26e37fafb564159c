package helm

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-cmp/cmp"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"
	"helm.sh/helm/v3/pkg/registry"

	"meridian.dev/meridian/fleet"
)

// quietRegistryLogs silences the registry's logger, the process-wide logrus one.
var quietRegistryLogs sync.Once

// ociRegistry is a real OCI registry (the CNCF distribution registry, in memory) served
// over TLS on 127.0.0.1, counting the requests it answers.
type ociRegistry struct {
	srv      *httptest.Server
	host     string // 127.0.0.1:port
	requests atomic.Int64
}

// newOCIRegistry starts a registry; with user set, it wants that user and password.
func newOCIRegistry(t testing.TB, user, password string) *ociRegistry {
	t.Helper()
	config := &configuration.Configuration{}
	config.Storage = configuration.Storage{"inmemory": configuration.Parameters{}}
	config.Log.Level = "error"
	config.Log.AccessLog.Disabled = true
	config.HTTP.Secret = "test-upload-state-secret"
	if user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(t.TempDir(), "htpasswd")
		if err := os.WriteFile(htpasswd, fmt.Appendf(nil, "%s:%s\n", user, hash), 0o600); err != nil {
			t.Fatal(err)
		}
		config.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "test", "path": htpasswd}}
	}
	quietRegistryLogs.Do(func() { logrus.SetOutput(io.Discard) }) // the registry logs every request
	app := handlers.NewApp(context.Background(), config)
	reg := &ociRegistry{}
	reg.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.requests.Add(1)
		app.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.srv.Close)
	reg.host = strings.TrimPrefix(reg.srv.URL, "https://")
	return reg
}

// push packages a chart and pushes it with Helm's registry client to
// oci://<host>/charts/<name>:<version>.
func (reg *ociRegistry) push(t testing.TB, name, version string, auth ...string) {
	t.Helper()
	_, data := packageChart(t, name, version)
	opts := []registry.ClientOption{
		registry.ClientOptHTTPClient(reg.srv.Client()),
		registry.ClientOptWriter(io.Discard),
		registry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "config.json")),
	}
	if len(auth) == 2 {
		opts = append(opts, registry.ClientOptBasicAuth(auth[0], auth[1]))
	}
	client, err := registry.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Push(data, fmt.Sprintf("%s/charts/%s:%s", reg.host, name, version)); err != nil {
		t.Fatal(err)
	}
}

func (reg *ociRegistry) request(name, version string) Request {
	return Request{
		Root:        "/nonexistent-snapshot",
		AppDir:      "apps/x",
		Source:      fleet.HelmSource{Repository: "oci://" + reg.host + "/charts", Name: name, Version: version},
		ReleaseName: "x",
		Namespace:   "trucking",
	}
}

func TestRemoteOCIChartIsPulledOnceAndReusedWithoutNetwork(t *testing.T) {
	reg := newOCIRegistry(t, "", "")
	reg.push(t, "podinfo", "6.7.0")
	reg.push(t, "podinfo", "6.7.1+build.5")
	cache := t.TempDir()

	for _, version := range []string{"6.7.0", "6.7.1+build.5"} {
		t.Run(version, func(t *testing.T) {
			req := reg.request("podinfo", version)
			objs := mustRender(t, newRenderer(t, Options{CacheDir: cache, HTTPClient: reg.srv.Client()}), req)
			want := map[string]any{"chart": "podinfo-" + version, "greeting": "hello"}
			if diff := cmp.Diff(want, objs[0].Object["data"]); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}

			before := reg.requests.Load()
			again := newRenderer(t, Options{CacheDir: cache, HTTPClient: reg.srv.Client()})
			objs = mustRender(t, again, req)
			if diff := cmp.Diff(want, objs[0].Object["data"]); diff != "" {
				t.Errorf("data from the cache (-want +got):\n%s", diff)
			}
			if _, err := again.Digest(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			if got := reg.requests.Load() - before; got != 0 {
				t.Errorf("a cached chart made %d registry requests, want 0", got)
			}
		})
	}
}

func TestRemoteOCIRefusals(t *testing.T) {
	reg := newOCIRegistry(t, "pusher", "pa55word")
	reg.push(t, "podinfo", "6.7.0", "pusher", "pa55word")
	reg.push(t, "podinfo", "6.7.1+build.5", "pusher", "pa55word")

	tests := []struct {
		name    string
		creds   map[string]Credential
		version string
		wantErr string // %[1]s is the registry host
	}{
		{
			name:    "unknown version",
			creds:   map[string]Credential{reg.host: {Username: "pusher", Password: "pa55word"}},
			version: "9.9.9",
			wantErr: "apps/x/app.yaml: chart podinfo 9.9.9 from oci://%[1]s/charts: oci://%[1]s/charts/podinfo has no version 9.9.9; available versions: 6.7.1+build.5, 6.7.0; pin one of them in helm.version",
		},
		{
			name:    "no credentials for a registry that wants them",
			version: "6.7.0",
			wantErr: "apps/x/app.yaml: chart podinfo 6.7.0 from oci://%[1]s/charts: failed to perform \"FetchReference\" on source: GET \"https://%[1]s/v2/charts/podinfo/manifests/6.7.0\": basic credential not found; the registry wants credentials: configure them for %[1]s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRenderer(t, Options{HTTPClient: reg.srv.Client(), Credentials: tt.creds})
			_, err := r.Render(context.Background(), reg.request("podinfo", tt.version))
			if diff := cmp.Diff(fmt.Sprintf(tt.wantErr, reg.host), errText(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("with credentials", func(t *testing.T) {
		r := newRenderer(t, Options{HTTPClient: reg.srv.Client(), Credentials: map[string]Credential{reg.host: {Username: "pusher", Password: "pa55word"}}})
		if objs := mustRender(t, r, reg.request("podinfo", "6.7.0")); len(objs) != 1 {
			t.Errorf("got %d objects, want 1", len(objs))
		}
	})
}
