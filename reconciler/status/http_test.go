package status

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandlerIsReadOnly(t *testing.T) {
	s := New(Options{})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, path := range []string{"/", "/api/v1/status", "/metrics", "/static/app.js"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			req, err := http.NewRequest(method, srv.URL+path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %s, Allow %q; want 405 with Allow: GET, HEAD", method, path, resp.Status, resp.Header.Get("Allow"))
			}
		}
		resp, err := http.Head(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: %s; want 200", path, resp.Status)
		}
	}
}

func TestHandlerServes(t *testing.T) {
	f := loadExampleFleet(t)
	s := New(Options{Now: newClock().Now})
	feedExample(s, f)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	tests := []struct {
		path, contentType, contains string
		status                      int
	}{
		{"/", "text/html; charset=utf-8", `<div id="heatmap"`, 200},
		{"/static/app.js", "text/javascript; charset=utf-8", "/api/v1/status", 200},
		{"/static/style.css", "text/css; charset=utf-8", "--ready", 200},
		{"/api/v1/status", "application/json", `"placements"`, 200},
		{"/metrics", "text/plain; version=0.0.4; charset=utf-8; escaping=underscores", "meridian_placement_sync_state{", 200},
		{"/nothing-here", "text/plain; charset=utf-8", "404", 404},
		{"/static/../doc.go", "", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s: %s; want %d", tt.path, resp.Status, tt.status)
			}
			if tt.contentType != "" && resp.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("Content-Type %q; want %q", resp.Header.Get("Content-Type"), tt.contentType)
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Errorf("body lacks %q", tt.contains)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy %q; want %q", got, ContentSecurityPolicy)
			}
		})
	}

	var st Status
	if err := json.Unmarshal([]byte(get(t, srv.URL+"/api/v1/status")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Placements) != len(f.allUnits())+1 || len(st.Waves) != 2 || len(st.Regions) != 3 || st.Revision == nil || len(st.Errors) == 0 {
		t.Errorf("status has %d placements, %d waves, %d regions, revision %v, %d errors; want every unit, 2 waves, 3 regions, rev2 and errors",
			len(st.Placements), len(st.Waves), len(st.Regions), st.Revision, len(st.Errors))
	}
}

func TestContentSecurityPolicyForbidsExternalLoads(t *testing.T) {
	for _, directive := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(ContentSecurityPolicy, directive) {
			t.Errorf("Content-Security-Policy lacks %q", directive)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe-") || strings.Contains(ContentSecurityPolicy, "http") || strings.Contains(ContentSecurityPolicy, "*") {
		t.Errorf("Content-Security-Policy allows more than the daemon itself: %s", ContentSecurityPolicy)
	}
}

// TestDashboardLoadsNothingFromElsewhere reads every embedded file: no address
// outside the daemon, no inline script or style (the CSP would block them), no
// HTML built from strings.
func TestDashboardLoadsNothingFromElsewhere(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(`)
	inline := regexp.MustCompile(`(?i)<script>|<style|\sstyle="|\son[a-z]+="`)
	unsafeDOM := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`)
	n := 0
	err := fs.WalkDir(webFiles, "web", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := webFiles.ReadFile(path)
		if err != nil {
			return err
		}
		text := strings.ReplaceAll(string(b), `xmlns="http://www.w3.org/2000/svg"`, "")
		if m := external.FindString(text); m != "" {
			t.Errorf("%s refers to %q", path, m)
		}
		if m := inline.FindString(text); m != "" {
			t.Errorf("%s has inline %q", path, m)
		}
		if m := unsafeDOM.FindString(text); m != "" {
			t.Errorf("%s uses %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("%d embedded files; want index.html, app.js, style.css and favicon.svg", n)
	}
}
