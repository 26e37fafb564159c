package sources

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// DefaultWebhookMaxBody is the largest webhook body accepted when
// WebhookOptions.MaxBodyBytes is zero. Push payloads are far smaller.
const DefaultWebhookMaxBody = 4 << 20

// minWebhookSecret is the shortest secret or token NewWebhook accepts.
const minWebhookSecret = 16

// The headers each provider signs its push notifications with.
const (
	// HeaderGitHubSignature carries "sha256=<hex>", the HMAC-SHA256 of the
	// body keyed with the webhook secret.
	HeaderGitHubSignature = "X-Hub-Signature-256"
	// HeaderGitHubEvent names the GitHub event; "ping" is answered without
	// triggering a fetch.
	HeaderGitHubEvent = "X-GitHub-Event"
	// HeaderGitLabToken carries the webhook's secret token itself.
	HeaderGitLabToken = "X-Gitlab-Token"
	// HeaderSignature carries "sha256=<hex>", the HMAC-SHA256 of the body
	// keyed with the generic secret, for any other sender.
	HeaderSignature = "X-Signature"
)

// WebhookOptions configures a Webhook. Set the secret of each provider that
// may call it; a request from a provider without a secret is refused.
type WebhookOptions struct {
	// GitHubSecret is the secret of a GitHub (or Gitea, Forgejo) webhook,
	// checked against X-Hub-Signature-256.
	GitHubSecret string
	// GitLabToken is the secret token of a GitLab webhook, compared with
	// X-Gitlab-Token in constant time. GitLab sends the token itself, not a
	// signature, so use HTTPS between GitLab and Meridian.
	GitLabToken string
	// GenericSecret is the key of the HMAC-SHA256 of the body that any other
	// sender puts in X-Signature as "sha256=<hex>".
	GenericSecret string
	// MaxBodyBytes bounds the request body; zero means
	// DefaultWebhookMaxBody. A larger body is answered 413.
	MaxBodyBytes int64
	// Logger receives a line per accepted or refused request, never a
	// secret. Nil discards them.
	Logger *slog.Logger
}

// Webhook is an http.Handler that receives push notifications and signals
// Trigger. It never fetches by itself: a Poller listening on Trigger does.
// A notification that does not carry a valid signature is answered 401 and
// signals nothing.
type Webhook struct {
	opts    WebhookOptions
	log     *slog.Logger
	trigger chan struct{}
}

// NewWebhook returns a webhook receiver. At least one secret is required,
// and each must be at least 16 characters long.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	if opts.GitHubSecret == "" && opts.GitLabToken == "" && opts.GenericSecret == "" {
		return nil, errors.New("webhook: no secret set; set the GitHub secret, the GitLab token or the generic secret of the webhooks that call Meridian")
	}
	for _, s := range []struct{ name, value string }{
		{"GitHub secret", opts.GitHubSecret}, {"GitLab token", opts.GitLabToken}, {"generic secret", opts.GenericSecret},
	} {
		if s.value != "" && len(s.value) < minWebhookSecret {
			return nil, fmt.Errorf("webhook: the %s is shorter than %d characters; use a long random value, such as the output of `openssl rand -hex 32`", s.name, minWebhookSecret)
		}
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultWebhookMaxBody
	}
	if opts.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("webhook: max body bytes is %d; it must be positive, or 0 for %d", opts.MaxBodyBytes, DefaultWebhookMaxBody)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Webhook{opts: opts, log: log, trigger: make(chan struct{}, 1)}, nil
}

// Trigger returns the channel a verified notification signals. It has a
// buffer of one and is signalled without blocking, so a burst of
// notifications while a fetch runs leaves a single pending signal: one more
// fetch, which sees the latest push.
func (w *Webhook) Trigger() <-chan struct{} { return w.trigger }

// ServeHTTP verifies a notification and signals Trigger. It answers 405 to
// anything but POST, 401 when no configured provider's signature verifies,
// 413 when the body is larger than the limit, 200 to a GitHub ping and 202
// when a fetch was triggered.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "only POST is accepted", http.StatusMethodNotAllowed)
		return
	}
	provider, check := w.provider(r.Header)
	if check == nil {
		w.log.Warn("webhook refused: no signature header of a configured provider", "remote", r.RemoteAddr, "provider", provider)
		http.Error(rw, "missing or unsupported signature", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, w.opts.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		w.log.Warn("webhook refused: body too large", "remote", r.RemoteAddr, "provider", provider, "limit", w.opts.MaxBodyBytes)
		http.Error(rw, fmt.Sprintf("body larger than %d bytes", w.opts.MaxBodyBytes), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(rw, "cannot read the body", http.StatusBadRequest)
		return
	}
	if !check(body) {
		w.log.Warn("webhook refused: invalid signature", "remote", r.RemoteAddr, "provider", provider)
		http.Error(rw, "invalid signature", http.StatusUnauthorized)
		return
	}
	if provider == "github" && r.Header.Get(HeaderGitHubEvent) == "ping" {
		w.log.Info("webhook ping accepted", "remote", r.RemoteAddr, "provider", provider)
		fmt.Fprintln(rw, "pong")
		return
	}
	select {
	case w.trigger <- struct{}{}:
	default: // a fetch is already pending
	}
	w.log.Info("webhook accepted; fetch triggered", "remote", r.RemoteAddr, "provider", provider)
	rw.WriteHeader(http.StatusAccepted)
	fmt.Fprintln(rw, "fetch triggered")
}

// provider picks the provider by the signature header present and returns
// its name and a body check, or a nil check when that provider is not
// configured or no signature header is present.
func (w *Webhook) provider(h http.Header) (string, func(body []byte) bool) {
	switch {
	case h.Get(HeaderGitHubSignature) != "":
		if w.opts.GitHubSecret == "" {
			return "github", nil
		}
		sig := h.Get(HeaderGitHubSignature)
		return "github", func(body []byte) bool { return validHMAC(w.opts.GitHubSecret, sig, body) }
	case h.Get(HeaderGitLabToken) != "":
		if w.opts.GitLabToken == "" {
			return "gitlab", nil
		}
		tok := h.Get(HeaderGitLabToken)
		return "gitlab", func([]byte) bool {
			return subtle.ConstantTimeCompare([]byte(tok), []byte(w.opts.GitLabToken)) == 1
		}
	case h.Get(HeaderSignature) != "":
		if w.opts.GenericSecret == "" {
			return "generic", nil
		}
		sig := h.Get(HeaderSignature)
		return "generic", func(body []byte) bool { return validHMAC(w.opts.GenericSecret, sig, body) }
	}
	return "unknown", nil
}

// validHMAC reports whether header is "sha256=<hex>" of the HMAC-SHA256 of
// body keyed with secret; the comparison takes constant time.
func validHMAC(secret, header string, body []byte) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// SignBody returns the "sha256=<hex>" value of X-Hub-Signature-256 and
// X-Signature for body keyed with secret, for senders of the generic form and
// for tests.
func SignBody(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
