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

// APIPath is the status document's path on the daemon's listen address.
const APIPath = "/api/v1/status"

// URL turns --server (a URL, or host:port) into the status API's URL.
func URL(server string) (string, error) {
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
	u.Path = strings.TrimSuffix(u.Path, "/") + APIPath
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

// Fetch reads and decodes the daemon's /api/v1/status.
func Fetch(ctx context.Context, client *http.Client, server string) (*status.Status, error) {
	u, err := URL(server)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the daemon at %s: %w; is `meridian run` (or the demo) running there? Set --server or $%s to its listen address", server, unwrapURLError(err), ServerEnv)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s: %s: %s; is --server the daemon's listen address?", u, resp.Status, strings.TrimSpace(string(body)))
	}
	var st status.Status
	dec := json.NewDecoder(resp.Body)
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%s: the answer is not a status document (%v); is --server the daemon's listen address?", u, err)
	}
	if st.States == nil || st.Placements == nil {
		return nil, fmt.Errorf("%s: the answer is not a status document (no states or placements); is --server the daemon's listen address?", u)
	}
	return &st, nil
}

// unwrapURLError drops net/http's "Get URL:" prefix, which the message says already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
