// Package registrytest runs a real OCI registry — the CNCF distribution
// registry, storing in a temporary directory — inside the test process, served over TLS on
// 127.0.0.1, for tests that push and pull images and charts. Tests and
// meridian-dev link it; the meridian binary does not.
package registrytest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // the storage the registry is configured with
	"github.com/sirupsen/logrus"
)

// quietLogs silences the registry's logger, the process-wide logrus one, which
// otherwise logs every request.
var quietLogs sync.Once

// Registry is a running registry. Its clients must trust its self-signed
// certificate: use Client, or Transport with go-containerregistry's remote.
type Registry struct {
	// Host is 127.0.0.1:PORT, the registry part of image references.
	Host string

	srv *httptest.Server
}

// New starts a registry that accepts anonymous pushes and pulls; the test's
// cleanup stops it.
func New(t testing.TB) *Registry {
	t.Helper()
	config := &configuration.Configuration{}
	// On disk: the in-memory driver copies a blob on every write, which makes
	// pushing a binary of tens of megabytes take minutes.
	config.Storage = configuration.Storage{"filesystem": configuration.Parameters{"rootdirectory": t.TempDir()}}
	config.Log.Level = "error"
	config.Log.AccessLog.Disabled = true
	config.HTTP.Secret = "test-upload-state-secret"
	quietLogs.Do(func() { logrus.SetOutput(io.Discard) })
	srv := httptest.NewTLSServer(handlers.NewApp(context.Background(), config))
	t.Cleanup(srv.Close)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "https://"), srv: srv}
}

// Client is an HTTP client that trusts the registry's certificate.
func (r *Registry) Client() *http.Client { return r.srv.Client() }

// Transport is Client's transport.
func (r *Registry) Transport() http.RoundTripper { return r.srv.Client().Transport }
