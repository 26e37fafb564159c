package helm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sync/singleflight"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
)

// DefaultKubeVersion is the Kubernetes version charts are rendered for when a request
// names none: the version of the Kubernetes libraries Meridian is built with, so that
// the default .Capabilities.APIVersions and .Capabilities.KubeVersion agree. (Helm's own
// default, 1.20, is far older than any supported cluster.)
const DefaultKubeVersion = "1.37.0"

// Options configure a Renderer.
type Options struct {
	// CacheDir holds downloaded chart archives, one per repository, chart name and
	// version. Required; created if missing. Several Renderers, even in several
	// processes, may share it.
	CacheDir string
	// HTTPClient makes every request to chart repositories and OCI registries. Its
	// transport decides proxies and trusted CAs (tests trust their own server's CA this
	// way). Nil means a client with http.DefaultTransport. Renders are bounded in time
	// by their context, except for OCI pulls, which a cancelled render stops waiting for.
	HTTPClient *http.Client
	// Credentials are basic-auth credentials by host (host or host:port as written in
	// the repository URL). They are sent only to that host, never to a host a chart
	// repository's index points elsewhere. Hosts without an entry are contacted
	// anonymously: ambient credentials (~/.docker/config.json, Helm's registry login)
	// are never used.
	Credentials map[string]Credential
	// Logger receives a line for each chart downloaded. Nil discards.
	Logger *slog.Logger
}

// Credential is a username and password for a chart repository or registry.
type Credential struct {
	// Username to authenticate as.
	Username string
	// Password or token of Username.
	Password string
}

// String shows the username only, so that a Credential printed by mistake does not leak.
func (c Credential) String() string { return c.Username + ":<redacted>" }

// GoString shows the username only, like String, for %#v.
func (c Credential) GoString() string {
	return fmt.Sprintf("helm.Credential{Username: %q}", c.Username)
}

// Renderer renders Helm charts into objects. It is safe for concurrent use.
type Renderer struct {
	cacheDir string
	http     *http.Client
	creds    map[string]Credential
	log      *slog.Logger
	fetches  singleflight.Group
}

// New returns a Renderer that keeps downloaded charts in opts.CacheDir.
func New(opts Options) (*Renderer, error) {
	if opts.CacheDir == "" {
		return nil, errors.New("helm renderer: no chart cache directory given; set Options.CacheDir")
	}
	if err := os.MkdirAll(opts.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("helm renderer: chart cache directory: %w", err)
	}
	r := &Renderer{
		cacheDir: opts.CacheDir,
		http:     opts.HTTPClient,
		creds:    opts.Credentials,
		log:      opts.Logger,
	}
	if r.http == nil {
		r.http = &http.Client{Transport: http.DefaultTransport}
	}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return r, nil
}

// Request is one chart to render for one placement.
type Request struct {
	// Root is the absolute path of the repository snapshot; an immutable checkout.
	Root string
	// AppDir is the directory of the App's app.yaml, slash-separated and relative to Root
	// (e.g. apps/portal).
	AppDir string
	// Source is the App's helm section.
	Source fleet.HelmSource
	// ReleaseName is .Release.Name; a valid Helm release name.
	ReleaseName string
	// Namespace is .Release.Namespace.
	Namespace string
	// Values are the placement's values, already merged by precedence; they are
	// coalesced over the chart's values.yaml. Not modified.
	Values map[string]any
	// KubeVersion is the cluster's Kubernetes version, e.g. "1.37.2"; empty means
	// DefaultKubeVersion.
	KubeVersion string
	// APIVersions are added to .Capabilities.APIVersions, e.g. "monitoring.coreos.com/v1"
	// or "monitoring.coreos.com/v1/ServiceMonitor", for charts that render optional
	// objects only when the cluster serves their API.
	APIVersions []string
}

// appFile is the App file the request comes from, for messages.
func (req Request) appFile() string { return path.Join(req.AppDir, "app.yaml") }

// check refuses requests that cannot name a chart in a snapshot.
func (req Request) check() error {
	if !filepath.IsAbs(req.Root) {
		return fmt.Errorf("%s: snapshot root %q is not an absolute path", req.appFile(), req.Root)
	}
	if d := path.Clean(req.AppDir); path.IsAbs(req.AppDir) || d == ".." || strings.HasPrefix(d, "../") {
		return fmt.Errorf("%s: app directory %q is not inside the repository", req.appFile(), req.AppDir)
	}
	src := req.Source
	switch {
	case src.Chart != "" && src.Repository != "":
		return fmt.Errorf("%s: helm sets both chart and repository; set one", req.appFile())
	case src.Chart == "" && src.Repository == "":
		return fmt.Errorf("%s: helm sets neither chart nor repository; set one", req.appFile())
	case src.Repository != "" && (src.Name == "" || src.Version == ""):
		return fmt.Errorf("%s: helm.repository needs helm.name and helm.version to pin the chart", req.appFile())
	}
	if u, err := url.Parse(src.Repository); err == nil && u.User != nil {
		// Not echoed: the URL holds a secret.
		return fmt.Errorf("%s: helm.repository has credentials in its URL; remove them from the repository and give them to Meridian's configuration", req.appFile())
	}
	return nil
}

// Render renders the request's chart and returns its objects sorted by API group, kind,
// namespace and name. A remote chart is downloaded unless it is in the cache. The
// request's values are not modified. Errors name the App file or the chart file and,
// where Helm reports one, the template line.
func (r *Renderer) Render(ctx context.Context, req Request) ([]*unstructured.Unstructured, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.check(); err != nil {
		return nil, err
	}
	if err := chartutil.ValidateReleaseName(req.ReleaseName); err != nil {
		return nil, fmt.Errorf("%s: release name %q: %w", req.appFile(), req.ReleaseName, err)
	}
	if req.Namespace == "" {
		return nil, fmt.Errorf("%s: no namespace to render release %s into", req.appFile(), req.ReleaseName)
	}
	ch, loc, err := r.load(ctx, req)
	if err != nil {
		return nil, err
	}
	return render(ch, loc, req)
}

// load reads the request's chart, from the snapshot or from a repository.
func (r *Renderer) load(ctx context.Context, req Request) (*chart.Chart, location, error) {
	if req.Source.Chart != "" {
		return loadLocal(req)
	}
	return r.loadRemote(ctx, req)
}

// Digest returns a content digest of the request's chart ("sha256:<hex>") for a render
// cache: for a local chart, of the path and content of every file Helm loads from the
// chart directory (all of it but what .helmignore excludes); for a remote chart, of the
// repository, name, version and the verified archive digest, downloading the chart into
// the cache if it is not there yet. It reads Root, AppDir and Source only; values,
// versions and names are the caller's to add to its cache key.
func (r *Renderer) Digest(ctx context.Context, req Request) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := req.check(); err != nil {
		return "", err
	}
	if req.Source.Chart != "" {
		files, _, err := readLocal(req)
		if err != nil {
			return "", err
		}
		return digestFiles(files), nil
	}
	a, err := r.fetch(ctx, req)
	if err != nil {
		return "", err
	}
	return digestRemote(a), nil
}
