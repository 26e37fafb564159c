package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"

	"meridian.dev/meridian/fleet"
)

// packageChart packages a small chart with Helm's own packaging and returns the
// archive's file name and content.
func packageChart(t testing.TB, name, version string) (string, []byte) {
	t.Helper()
	ch, err := loader.LoadFiles([]*loader.BufferedFile{
		{Name: "Chart.yaml", Data: fmt.Appendf(nil, "apiVersion: v2\nname: %s\nversion: %s\n", name, version)},
		{Name: "values.yaml", Data: []byte("greeting: hello\n")},
		{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\ndata:\n  chart: {{ .Chart.Name }}-{{ .Chart.Version }}\n  greeting: {{ .Values.greeting }}\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Base(p), data
}

// chartRepo is a chart repository served on 127.0.0.1: an index.yaml made by Helm's
// repo package and the archives it lists, counting the requests it answers.
type chartRepo struct {
	srv      *httptest.Server
	index    []byte
	archives map[string][]byte // by URL path

	indexGets   atomic.Int64
	archiveGets atomic.Int64
	// auth, if set, is the "user:password" every request must carry.
	auth string
	// delay holds each archive response, so that concurrent renders overlap.
	delay time.Duration

	mu         sync.Mutex
	authHeader map[string]string // Authorization header by path, as last seen
}

// repoChart is one chart version to serve.
type repoChart struct {
	name, version string
	// indexDigest, if set, replaces the true digest in index.yaml.
	indexDigest string
	// archiveOf, if set, serves the archive of this other version under this one's name.
	archiveOf string
	// url, if set, is the chart's URL in index.yaml (e.g. on another server).
	url string
}

func newChartRepo(t testing.TB, charts ...repoChart) *chartRepo {
	t.Helper()
	cr := &chartRepo{archives: map[string][]byte{}, authHeader: map[string]string{}}
	cr.srv = httptest.NewServer(http.HandlerFunc(cr.serve))
	t.Cleanup(cr.srv.Close)

	index := repo.NewIndexFile()
	for _, c := range charts {
		filename, data := packageChart(t, c.name, c.version)
		if c.archiveOf != "" {
			_, data = packageChart(t, c.name, c.archiveOf)
		}
		sum := sha256.Sum256(data)
		digest := hex.EncodeToString(sum[:])
		if c.indexDigest != "" {
			digest = c.indexDigest
		}
		md := &chart.Metadata{APIVersion: chart.APIVersionV2, Name: c.name, Version: c.version}
		if err := index.MustAdd(md, "charts/"+filename, "", digest); err != nil {
			t.Fatal(err)
		}
		if c.url != "" {
			index.Entries[c.name][len(index.Entries[c.name])-1].URLs = []string{c.url}
		}
		cr.archives["/charts/"+filename] = data
	}
	index.SortEntries()
	p := filepath.Join(t.TempDir(), "index.yaml")
	if err := index.WriteFile(p, 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if cr.index, err = os.ReadFile(p); err != nil {
		t.Fatal(err)
	}
	return cr
}

func (cr *chartRepo) serve(w http.ResponseWriter, r *http.Request) {
	cr.mu.Lock()
	cr.authHeader[r.URL.Path] = r.Header.Get("Authorization")
	cr.mu.Unlock()
	if cr.auth != "" {
		user, pass, ok := r.BasicAuth()
		if !ok || user+":"+pass != cr.auth {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
	}
	if r.URL.Path == "/index.yaml" {
		cr.indexGets.Add(1)
		w.Write(cr.index)
		return
	}
	data, ok := cr.archives[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	cr.archiveGets.Add(1)
	time.Sleep(cr.delay)
	w.Write(data)
}

// request renders name and version of the repository as app x.
func (cr *chartRepo) request(name, version string) Request {
	return Request{
		Root:        "/nonexistent-snapshot",
		AppDir:      "apps/x",
		Source:      fleet.HelmSource{Repository: cr.srv.URL + "/", Name: name, Version: version},
		ReleaseName: "x",
		Namespace:   "trucking",
	}
}

func TestRemoteHTTPChartIsDownloadedOnceAndReusedWithoutNetwork(t *testing.T) {
	cr := newChartRepo(t, repoChart{name: "podinfo", version: "6.7.0"}, repoChart{name: "podinfo", version: "6.7.1"})
	cache := t.TempDir()
	req := cr.request("podinfo", "6.7.0")

	first := newRenderer(t, Options{CacheDir: cache})
	objs := mustRender(t, first, req)
	want := map[string]any{"chart": "podinfo-6.7.0", "greeting": "hello"}
	if diff := cmp.Diff(want, objs[0].Object["data"]); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if got := []int64{cr.indexGets.Load(), cr.archiveGets.Load()}; !cmp.Equal(got, []int64{1, 1}) {
		t.Errorf("first render: index and archive requests = %v, want [1 1]", got)
	}
	firstDigest, err := first.Digest(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}

	// The same Renderer, another Renderer over the same cache, and one with the
	// repository gone: none of them asks the network again.
	mustRender(t, first, req)
	second := newRenderer(t, Options{CacheDir: cache})
	mustRender(t, second, req)
	cr.srv.Close()
	objs = mustRender(t, newRenderer(t, Options{CacheDir: cache}), req)
	if diff := cmp.Diff(want, objs[0].Object["data"]); diff != "" {
		t.Errorf("data from the cache (-want +got):\n%s", diff)
	}
	if got := []int64{cr.indexGets.Load(), cr.archiveGets.Load()}; !cmp.Equal(got, []int64{1, 1}) {
		t.Errorf("after cache hits: index and archive requests = %v, want [1 1]", got)
	}
	secondDigest, err := second.Digest(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if firstDigest != secondDigest || !strings.HasPrefix(firstDigest, "sha256:") {
		t.Errorf("digests %q and %q of one cached chart differ", firstDigest, secondDigest)
	}
}

func TestRemoteHTTPDigestDependsOnVersion(t *testing.T) {
	cr := newChartRepo(t, repoChart{name: "podinfo", version: "6.7.0"}, repoChart{name: "podinfo", version: "6.7.1"})
	r := newRenderer(t, Options{})
	a, err := r.Digest(context.Background(), cr.request("podinfo", "6.7.0"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Digest(context.Background(), cr.request("podinfo", "6.7.1"))
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two versions have the same digest %s", a)
	}
}

func TestRemoteHTTPConcurrentRendersDownloadOnce(t *testing.T) {
	cr := newChartRepo(t, repoChart{name: "podinfo", version: "6.7.0"})
	cr.delay = 200 * time.Millisecond
	r := newRenderer(t, Options{})
	req := cr.request("podinfo", "6.7.0")

	const renders = 8
	var wg sync.WaitGroup
	errs := make([]error, renders)
	for i := range renders {
		wg.Go(func() {
			_, errs[i] = r.Render(context.Background(), req)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := []int64{cr.indexGets.Load(), cr.archiveGets.Load()}; !cmp.Equal(got, []int64{1, 1}) {
		t.Errorf("%d concurrent renders: index and archive requests = %v, want [1 1]", renders, got)
	}
}

func TestRemoteHTTPRefusals(t *testing.T) {
	wrong := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		charts  []repoChart
		auth    string
		chart   string
		version string
		wantErr string // %s is the repository URL
	}{
		{
			name:    "unknown version lists the available ones",
			charts:  []repoChart{{name: "podinfo", version: "6.7.0"}, {name: "podinfo", version: "6.10.0"}, {name: "podinfo", version: "6.7.1"}},
			chart:   "podinfo",
			version: "6.8.0",
			wantErr: "apps/x/app.yaml: chart podinfo 6.8.0 from %[1]s: %[1]s/index.yaml has no version 6.8.0 of podinfo; available versions: 6.10.0, 6.7.1, 6.7.0; pin one of them in helm.version",
		},
		{
			name:    "unknown chart lists the charts",
			charts:  []repoChart{{name: "podinfo", version: "6.7.0"}, {name: "redis", version: "1.0.0"}},
			chart:   "nginx",
			version: "1.0.0",
			wantErr: "apps/x/app.yaml: chart nginx 1.0.0 from %[1]s: %[1]s/index.yaml has no chart nginx; it has podinfo, redis; correct helm.name",
		},
		{
			name:    "archive that does not match the digest in the index",
			charts:  []repoChart{{name: "podinfo", version: "6.7.0", indexDigest: wrong}},
			chart:   "podinfo",
			version: "6.7.0",
			wantErr: "apps/x/app.yaml: chart podinfo 6.7.0 from %[1]s: %[1]s/charts/podinfo-6.7.0.tgz has digest sha256:<digest> but index.yaml says sha256:" + wrong + "; the repository is inconsistent or was tampered with, and nothing was cached",
		},
		{
			name:    "archive of another version",
			charts:  []repoChart{{name: "podinfo", version: "6.7.0", archiveOf: "6.6.6"}},
			chart:   "podinfo",
			version: "6.7.0",
			wantErr: "apps/x/app.yaml: chart podinfo 6.7.0 from %[1]s: the archive holds chart podinfo 6.6.6 instead; the repository serves a wrong archive",
		},
		{
			name:    "repository that wants credentials we do not have",
			charts:  []repoChart{{name: "podinfo", version: "6.7.0"}},
			auth:    "reader:s3cret",
			chart:   "podinfo",
			version: "6.7.0",
			wantErr: "apps/x/app.yaml: chart podinfo 6.7.0 from %[1]s: GET %[1]s/index.yaml: 401 Unauthorized",
		},
		{
			name:    "archive missing from the repository",
			charts:  []repoChart{{name: "podinfo", version: "6.7.0", url: "charts/gone-6.7.0.tgz"}},
			chart:   "podinfo",
			version: "6.7.0",
			wantErr: "apps/x/app.yaml: chart podinfo 6.7.0 from %[1]s: GET %[1]s/charts/gone-6.7.0.tgz: 404 Not Found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := newChartRepo(t, tt.charts...)
			cr.auth = tt.auth
			cache := t.TempDir()
			_, err := newRenderer(t, Options{CacheDir: cache}).Render(context.Background(), cr.request(tt.chart, tt.version))
			want := fmt.Sprintf(tt.wantErr, cr.srv.URL)
			if strings.Contains(want, "<digest>") {
				sum := sha256.Sum256(cr.archives["/charts/podinfo-6.7.0.tgz"])
				want = strings.Replace(want, "<digest>", hex.EncodeToString(sum[:]), 1)
			}
			if diff := cmp.Diff(want, errText(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if entries, _ := filepath.Glob(filepath.Join(cache, "charts", "*")); len(entries) != 0 {
				t.Errorf("a refused chart was cached: %v", entries)
			}
		})
	}
}

func TestRemoteHTTPCredentialsGoOnlyToTheRepositoryHost(t *testing.T) {
	elsewhere := newChartRepo(t, repoChart{name: "podinfo", version: "6.7.0"})
	// The index lists the digest of the archive elsewhere serves: packaging the
	// chart again, a second later, makes other bytes.
	sum := sha256.Sum256(elsewhere.archives["/charts/podinfo-6.7.0.tgz"])
	cr := newChartRepo(t, repoChart{name: "podinfo", version: "6.7.0", url: elsewhere.srv.URL + "/charts/podinfo-6.7.0.tgz", indexDigest: hex.EncodeToString(sum[:])})
	cr.auth = "reader:s3cret"
	host := strings.TrimPrefix(cr.srv.URL, "http://")
	r := newRenderer(t, Options{Credentials: map[string]Credential{host: {Username: "reader", Password: "s3cret"}}})

	objs := mustRender(t, r, cr.request("podinfo", "6.7.0"))
	if len(objs) != 1 {
		t.Fatalf("got %d objects, want 1", len(objs))
	}
	if got := cr.authHeader["/index.yaml"]; got == "" {
		t.Error("the repository's index was fetched without its credentials")
	}
	if got := elsewhere.authHeader["/charts/podinfo-6.7.0.tgz"]; got != "" {
		t.Errorf("credentials were sent to another host: Authorization %q", got)
	}
}

func TestRemoteDamagedCacheIsDownloadedAgain(t *testing.T) {
	cr := newChartRepo(t, repoChart{name: "podinfo", version: "6.7.0"})
	cache := t.TempDir()
	req := cr.request("podinfo", "6.7.0")
	mustRender(t, newRenderer(t, Options{CacheDir: cache}), req)

	blobs, err := filepath.Glob(filepath.Join(cache, "blobs", "sha256", "*.tgz"))
	if err != nil || len(blobs) != 1 {
		t.Fatalf("cached archives: %v, %v; want one", blobs, err)
	}
	if err := os.WriteFile(blobs[0], []byte("not the chart"), 0o600); err != nil {
		t.Fatal(err)
	}
	objs := mustRender(t, newRenderer(t, Options{CacheDir: cache}), req)
	if len(objs) != 1 {
		t.Fatalf("got %d objects, want 1", len(objs))
	}
	if got := cr.archiveGets.Load(); got != 2 {
		t.Errorf("archive requests = %d, want 2: the damaged archive is fetched again", got)
	}
}

func TestCredentialDoesNotPrintItsPassword(t *testing.T) {
	c := Credential{Username: "reader", Password: "s3cret"}
	for _, format := range []string{"%v", "%+v", "%s", "%#v"} {
		if got := fmt.Sprintf(format, c); strings.Contains(got, "s3cret") {
			t.Errorf("%s prints the password: %s", format, got)
		}
	}
	if got := fmt.Sprintf("%v", map[string]Credential{"h": c}); strings.Contains(got, "s3cret") {
		t.Errorf("a map of credentials prints the password: %s", got)
	}
}
