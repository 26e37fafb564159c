package helm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"sigs.k8s.io/yaml"
)

const (
	// maxIndexSize bounds a chart repository's index.yaml.
	maxIndexSize = 64 << 20
	// listLimit bounds how many chart names or versions an error lists.
	listLimit = 20
)

// archive is a verified chart archive of a remote repository.
type archive struct {
	repository, name, version string
	// digest is "sha256:<hex>" of data.
	digest string
	data   []byte
}

// describe names a remote chart in messages.
func describe(repository, name, version string) string {
	return fmt.Sprintf("chart %s %s from %s", name, version, repository)
}

// loadRemote loads the request's chart from the cache, downloading it first if needed.
func (r *Renderer) loadRemote(ctx context.Context, req Request) (*chart.Chart, location, error) {
	src := req.Source
	loc := location{appFile: req.appFile(), remote: describe(repositoryURL(src.Repository), src.Name, src.Version)}
	a, err := r.fetch(ctx, req)
	if err != nil {
		return nil, loc, err
	}
	ch, err := loadArchive(a)
	if err != nil {
		return nil, loc, fmt.Errorf("%s: %w", req.appFile(), err)
	}
	if err := checkDependencies(ch, loc, ""); err != nil {
		return nil, loc, err
	}
	return ch, loc, nil
}

// loadArchive loads a downloaded chart, refusing one that is not the chart it was
// downloaded as.
func loadArchive(a *archive) (*chart.Chart, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(a.data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", describe(a.repository, a.name, a.version), err)
	}
	if ch.Metadata.Name != a.name || ch.Metadata.Version != a.version {
		return nil, fmt.Errorf("%s: the archive holds chart %s %s instead; the repository serves a wrong archive", describe(a.repository, a.name, a.version), ch.Metadata.Name, ch.Metadata.Version)
	}
	return ch, nil
}

// repositoryURL is a repository URL without trailing slashes, as it is keyed.
func repositoryURL(s string) string { return strings.TrimRight(s, "/") }

// fetch returns the request's chart archive from the cache, or downloads, verifies and
// caches it. Concurrent fetches of one chart share a single download.
func (r *Renderer) fetch(ctx context.Context, req Request) (*archive, error) {
	src := req.Source
	repository := repositoryURL(src.Repository)
	if a := r.cached(repository, src.Name, src.Version); a != nil {
		return a, nil
	}
	k := cacheKey(repository, src.Name, src.Version)
	v, err, _ := r.fetches.Do(k, func() (any, error) {
		if a := r.cached(repository, src.Name, src.Version); a != nil {
			return a, nil // another download just finished
		}
		a, err := r.download(ctx, repository, src.Name, src.Version)
		if err != nil {
			return nil, err
		}
		r.store(a)
		return a, nil
	})
	if err != nil {
		// Downloads are shared by Apps, so the App file is added here, per caller.
		return nil, fmt.Errorf("%s: %w", req.appFile(), err)
	}
	return v.(*archive), nil
}

// download fetches a chart from its repository and verifies it.
func (r *Renderer) download(ctx context.Context, repository, name, version string) (*archive, error) {
	u, err := url.Parse(repository)
	if err != nil {
		return nil, fmt.Errorf("%s: repository %q is not a URL: %w", describe(repository, name, version), repository, err)
	}
	var a *archive
	switch u.Scheme {
	case "http", "https":
		a, err = r.downloadHTTP(ctx, u, repository, name, version)
	case registry.OCIScheme:
		a, err = r.downloadOCI(ctx, u, repository, name, version)
	default:
		return nil, fmt.Errorf("%s: repository must be an http://, https:// or oci:// URL", describe(repository, name, version))
	}
	if err != nil {
		return nil, err
	}
	// Only a loadable archive of the right chart is worth keeping.
	if _, err := loadArchive(a); err != nil {
		return nil, err
	}
	r.log.Info("downloaded chart", "repository", repository, "chart", name, "version", version, "digest", a.digest)
	return a, nil
}

// downloadHTTP finds name and version in the repository's index.yaml, downloads the
// archive and checks it against the digest the index gives.
func (r *Renderer) downloadHTTP(ctx context.Context, repoURL *url.URL, repository, name, version string) (*archive, error) {
	what := describe(repository, name, version)
	indexURL := repository + "/index.yaml"
	data, err := r.get(ctx, repoURL.Host, indexURL, maxIndexSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var index repo.IndexFile
	if err := yaml.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("%s: %s is not a chart repository index: %w", what, indexURL, err)
	}
	if index.APIVersion == "" {
		return nil, fmt.Errorf("%s: %s is not a chart repository index: it has no apiVersion", what, indexURL)
	}
	index.SortEntries()
	versions := index.Entries[name]
	if len(versions) == 0 {
		return nil, fmt.Errorf("%s: %s has no chart %s; it has %s; correct helm.name", what, indexURL, name, list(slices.Sorted(maps.Keys(index.Entries))))
	}
	i := slices.IndexFunc(versions, func(cv *repo.ChartVersion) bool { return cv.Version == version })
	if i < 0 {
		var have []string
		for _, cv := range versions {
			have = append(have, cv.Version)
		}
		return nil, fmt.Errorf("%s: %s has no version %s of %s; available versions: %s; pin one of them in helm.version", what, indexURL, version, name, list(have))
	}
	cv := versions[i]
	want := strings.TrimPrefix(cv.Digest, "sha256:")
	if want == "" {
		return nil, fmt.Errorf("%s: %s gives no digest for it, so the download cannot be verified; the repository's owner should regenerate the index (helm repo index)", what, indexURL)
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("%s: %s gives no URL for it", what, indexURL)
	}
	chartURL, err := repo.ResolveReferenceURL(repository, cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	data, err = r.get(ctx, repoURL.Host, chartURL, loader.MaxDecompressedChartSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != want {
		return nil, fmt.Errorf("%s: %s has digest sha256:%s but index.yaml says sha256:%s; the repository is inconsistent or was tampered with, and nothing was cached", what, chartURL, got, want)
	}
	return &archive{repository: repository, name: name, version: version, digest: "sha256:" + want, data: data}, nil
}

// get fetches rawURL, at most limit bytes. Credentials for repoHost go only to repoHost.
func (r *Renderer) get(ctx context.Context, repoHost, rawURL string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	if c, ok := r.creds[req.URL.Host]; ok && req.URL.Host == repoHost {
		req.SetBasicAuth(c.Username, c.Password)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", rawURL, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", rawURL, limit)
	}
	return data, nil
}

// downloadOCI pulls repository/name:version with Helm's registry client, which
// verifies every blob against its digest.
func (r *Renderer) downloadOCI(ctx context.Context, repoURL *url.URL, repository, name, version string) (*archive, error) {
	what := describe(repository, name, version)
	// Helm's client turns "+" in the tag into "_", as OCI tags cannot hold "+".
	ref := strings.TrimPrefix(repository, registry.OCIScheme+"://") + "/" + name + ":" + version
	client, err := registry.NewClient(
		registry.ClientOptHTTPClient(r.http),
		registry.ClientOptWriter(io.Discard),
		// A file that is never written: credentials come from Options only.
		registry.ClientOptCredentialsFile(filepath.Join(r.cacheDir, "no-registry-credentials.json")),
		registry.ClientOptAuthorizer(auth.Client{
			Client: r.http,
			Cache:  auth.NewCache(),
			Credential: func(_ context.Context, hostport string) (auth.Credential, error) {
				if c, ok := r.creds[hostport]; ok && hostport == repoURL.Host {
					return auth.Credential{Username: c.Username, Password: c.Password}, nil
				}
				return auth.EmptyCredential, nil
			},
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}

	// The registry client takes no context; a cancelled render stops waiting for it.
	type pulled struct {
		res *registry.PullResult
		err error
	}
	done := make(chan pulled, 1)
	go func() {
		res, err := client.Pull(ref, registry.PullOptWithChart(true))
		done <- pulled{res, err}
	}()
	var p pulled
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", what, ctx.Err())
	case p = <-done:
	}
	switch {
	case errors.Is(p.err, errdef.ErrNotFound):
		return nil, r.unknownTag(what, client, repository, name, version, p.err)
	case errors.Is(p.err, auth.ErrBasicCredentialNotFound):
		return nil, fmt.Errorf("%s: %w; the registry wants credentials: configure them for %s", what, p.err, repoURL.Host)
	case p.err != nil:
		return nil, fmt.Errorf("%s: %w", what, p.err)
	}
	data := p.res.Chart.Data
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if digest != p.res.Chart.Digest {
		return nil, fmt.Errorf("%s: chart layer has digest %s but the manifest says %s; nothing was cached", what, digest, p.res.Chart.Digest)
	}
	return &archive{repository: repository, name: name, version: version, digest: digest, data: data}, nil
}

// unknownTag explains a version the registry does not have, listing those it has; if
// they cannot be listed either, it returns the pull's own error.
func (r *Renderer) unknownTag(what string, client *registry.Client, repository, name, version string, pullErr error) error {
	tags, err := client.Tags(strings.TrimPrefix(repository, registry.OCIScheme+"://") + "/" + name)
	if err != nil || len(tags) == 0 {
		return fmt.Errorf("%s: %w", what, pullErr)
	}
	return fmt.Errorf("%s: %s/%s has no version %s; available versions: %s; pin one of them in helm.version", what, repository, name, version, list(tags))
}

// list joins names for a message, at most listLimit of them.
func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	if len(names) > listLimit {
		return strings.Join(names[:listLimit], ", ") + fmt.Sprintf(" and %d more", len(names)-listLimit)
	}
	return strings.Join(names, ", ")
}
