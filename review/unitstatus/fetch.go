package unitstatus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"meridian.dev/meridian/reconciler/status"
)

// DefaultServer is the daemon's API when neither --server nor ServerEnv says
// otherwise: the daemon's default listen address (":8080") on this machine,
// which is also where `meridian-dev demo` serves it.
const DefaultServer = "http://127.0.0.1:8080"

// ServerEnv names the environment variable that sets `meridian status --server`.
const ServerEnv = "MERIDIAN_SERVER"

// APIPath is the status document's path on the daemon's listen address;
// SummaryPath the summary's, whose lists of names the filters are checked
// against.
const (
	APIPath     = "/api/v1/status"
	SummaryPath = "/api/v1/summary"
)

// URL turns --server (a URL, or host:port) into the status API's URL.
func URL(server string) (string, error) {
	return apiURL(server, APIPath)
}

// apiURL turns --server into the URL of one of its API's paths.
func apiURL(server, path string) (string, error) {
	if server == "" {
		return "", fmt.Errorf("--server is empty: give the daemon's address, such as %s", DefaultServer)
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--server %q: give the daemon's address as http://host:port or https://host:port", server)
	}
	if u.User != nil {
		return "", fmt.Errorf("--server: the address must not carry credentials; the status API needs none")
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

// Fetch reads and decodes the daemon's /api/v1/status of the units f selects;
// the daemon filters them.
func Fetch(ctx context.Context, client *http.Client, server string, f status.Filter) (*status.Status, error) {
	var st status.Status
	u, err := get(ctx, client, server, APIPath, f.Query(), &st)
	if err != nil {
		return nil, err
	}
	if st.States == nil || st.Placements == nil {
		return nil, fmt.Errorf("%s: the answer is not a status document (no states or placements); is --server the daemon's listen address?", u)
	}
	return &st, nil
}

// FetchSummary reads and decodes the daemon's /api/v1/summary, without its
// heatmap: the names of its tenants, regions and apps.
func FetchSummary(ctx context.Context, client *http.Client, server string) (*status.Summary, error) {
	var sum status.Summary
	u, err := get(ctx, client, server, SummaryPath, url.Values{"rows": {"false"}}, &sum)
	if err != nil {
		return nil, err
	}
	if sum.States == nil || sum.Tenants == nil {
		return nil, fmt.Errorf("%s: the answer is not a summary (no states or tenants); is --server the daemon's listen address?", u)
	}
	return &sum, nil
}

// get reads the JSON of one of the daemon's paths with query into v, and
// returns the URL it read.
func get(ctx context.Context, client *http.Client, server, path string, query url.Values, v any) (string, error) {
	u, err := apiURL(server, path)
	if err != nil {
		return "", err
	}
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return u, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return u, fmt.Errorf("cannot reach the daemon at %s: %w; is `meridian run` (or the demo) running there? Set --server or $%s to its listen address", server, unwrapURLError(err), ServerEnv)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return u, fmt.Errorf("%s: %s: %s; is --server the daemon's listen address?", u, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return u, fmt.Errorf("%s: the answer is not a status document (%v); is --server the daemon's listen address?", u, err)
	}
	return u, nil
}

// unwrapURLError drops net/http's "Get URL:" prefix, which the message says already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
