package sources

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	testGitHubSecret  = "github-secret-0123456789"
	testGitLabToken   = "gitlab-token-0123456789"
	testGenericSecret = "generic-secret-0123456789"
)

// post sends a request to the webhook over a real HTTP server and returns
// the status and body.
func post(t *testing.T, url, method string, header http.Header, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// TestWebhook checks each provider's valid, invalid and missing signatures,
// oversized bodies and methods, and whether a fetch was triggered.
func TestWebhook(t *testing.T) {
	t.Parallel()
	all := WebhookOptions{GitHubSecret: testGitHubSecret, GitLabToken: testGitLabToken, GenericSecret: testGenericSecret, MaxBodyBytes: 1024}
	body := `{"ref":"refs/heads/main","after":"0123"}`
	big := strings.Repeat("x", 1025)
	tests := []struct {
		name        string
		opts        WebhookOptions
		method      string
		header      http.Header
		body        string
		wantStatus  int
		wantBody    string
		wantTrigger bool
	}{
		{"github push", all, "POST", hdr(HeaderGitHubSignature, SignBody(testGitHubSecret, []byte(body)), HeaderGitHubEvent, "push"), body, 202, "fetch triggered\n", true},
		{"github ping", all, "POST", hdr(HeaderGitHubSignature, SignBody(testGitHubSecret, []byte(body)), HeaderGitHubEvent, "ping"), body, 200, "pong\n", false},
		{"github wrong secret", all, "POST", hdr(HeaderGitHubSignature, SignBody("another-secret-0123456789", []byte(body))), body, 401, "invalid signature\n", false},
		{"github altered body", all, "POST", hdr(HeaderGitHubSignature, SignBody(testGitHubSecret, []byte(body))), body + " ", 401, "invalid signature\n", false},
		{"github no sha256 prefix", all, "POST", hdr(HeaderGitHubSignature, strings.TrimPrefix(SignBody(testGitHubSecret, []byte(body)), "sha256=")), body, 401, "invalid signature\n", false},
		{"github not hex", all, "POST", hdr(HeaderGitHubSignature, "sha256=zz"), body, 401, "invalid signature\n", false},
		{"github sha1 only", all, "POST", hdr("X-Hub-Signature", "sha1=0123"), body, 401, "missing or unsupported signature\n", false},
		{"github oversized", all, "POST", hdr(HeaderGitHubSignature, SignBody(testGitHubSecret, []byte(big))), big, 413, "body larger than 1024 bytes\n", false},
		{"gitlab push", all, "POST", hdr(HeaderGitLabToken, testGitLabToken, "X-Gitlab-Event", "Push Hook"), body, 202, "fetch triggered\n", true},
		{"gitlab wrong token", all, "POST", hdr(HeaderGitLabToken, "gitlab-token-012345678"), body, 401, "invalid signature\n", false},
		{"gitlab oversized", all, "POST", hdr(HeaderGitLabToken, testGitLabToken), big, 413, "body larger than 1024 bytes\n", false},
		{"generic push", all, "POST", hdr(HeaderSignature, SignBody(testGenericSecret, []byte(body))), body, 202, "fetch triggered\n", true},
		{"generic empty body", all, "POST", hdr(HeaderSignature, SignBody(testGenericSecret, nil)), "", 202, "fetch triggered\n", true},
		{"generic wrong secret", all, "POST", hdr(HeaderSignature, SignBody(testGitHubSecret, []byte(body))), body, 401, "invalid signature\n", false},
		{"generic oversized", all, "POST", hdr(HeaderSignature, SignBody(testGenericSecret, []byte(big))), big, 413, "body larger than 1024 bytes\n", false},
		{"no signature", all, "POST", hdr(), body, 401, "missing or unsupported signature\n", false},
		{"gitlab not configured", WebhookOptions{GitHubSecret: testGitHubSecret}, "POST", hdr(HeaderGitLabToken, testGitLabToken), body, 401, "missing or unsupported signature\n", false},
		{"github not configured", WebhookOptions{GenericSecret: testGenericSecret}, "POST", hdr(HeaderGitHubSignature, SignBody(testGitHubSecret, []byte(body))), body, 401, "missing or unsupported signature\n", false},
		{"get", all, "GET", hdr(HeaderGitLabToken, testGitLabToken), "", 405, "only POST is accepted\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wh, err := NewWebhook(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(wh)
			defer srv.Close()
			status, got := post(t, srv.URL, tt.method, tt.header, tt.body)
			if status != tt.wantStatus || got != tt.wantBody {
				t.Errorf("answer %d %q, want %d %q", status, got, tt.wantStatus, tt.wantBody)
			}
			if triggered := len(wh.Trigger()) == 1; triggered != tt.wantTrigger {
				t.Errorf("triggered = %v, want %v", triggered, tt.wantTrigger)
			}
		})
	}
}

// TestWebhookCoalesces checks that a burst of notifications leaves one
// pending trigger.
func TestWebhookCoalesces(t *testing.T) {
	t.Parallel()
	wh, err := NewWebhook(WebhookOptions{GitLabToken: testGitLabToken})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	for range 5 {
		if status, _ := post(t, srv.URL, "POST", hdr(HeaderGitLabToken, testGitLabToken), "{}"); status != 202 {
			t.Fatalf("status %d, want 202", status)
		}
	}
	if n := len(wh.Trigger()); n != 1 {
		t.Fatalf("%d pending triggers after a burst, want 1", n)
	}
	<-wh.Trigger()
	if n := len(wh.Trigger()); n != 0 {
		t.Errorf("%d pending triggers after receiving one, want 0", n)
	}
}

// TestNewWebhookRefuses checks the configurations NewWebhook refuses.
func TestNewWebhookRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts WebhookOptions
		want string
	}{
		{"no secret", WebhookOptions{}, "webhook: no secret set; set the GitHub secret, the GitLab token or the generic secret of the webhooks that call Meridian"},
		{"short secret", WebhookOptions{GitHubSecret: "short"}, "webhook: the GitHub secret is shorter than 16 characters; use a long random value, such as the output of `openssl rand -hex 32`"},
		{"short token", WebhookOptions{GitHubSecret: testGitHubSecret, GitLabToken: "short"}, "webhook: the GitLab token is shorter than 16 characters; use a long random value, such as the output of `openssl rand -hex 32`"},
		{"negative limit", WebhookOptions{GenericSecret: testGenericSecret, MaxBodyBytes: -1}, "webhook: max body bytes is -1; it must be positive, or 0 for 4194304"},
	}
	for _, tt := range tests {
		if _, err := NewWebhook(tt.opts); err == nil || err.Error() != tt.want {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}
