package ekstest

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	authv1 "k8s.io/api/authentication/v1"

	"meridian.dev/meridian/internal/testenv/ststest"
)

// AccessEntry maps an IAM principal to a Kubernetes user, as an EKS access
// entry does.
type AccessEntry struct {
	// Username is the Kubernetes user the principal becomes.
	Username string
	// Groups are its Kubernetes groups.
	Groups []string
}

// Review is one token review the authenticator answered.
type Review struct {
	// Authenticated says the token was accepted.
	Authenticated bool
	// Username is the user it was accepted as.
	Username string
	// Reason says why it was refused.
	Reason string
}

// Authenticator is a kube-apiserver webhook token authenticator for one EKS
// cluster, checking tokens against a Server. Close it when done.
type Authenticator struct {
	// URL is the webhook's base URL; kube-apiserver posts to URL/authenticate.
	URL string
	// ConfigFile is the kubeconfig-format file that
	// --authentication-token-webhook-config-file takes.
	ConfigFile string

	sts     *Server
	cluster string
	hs      *httptest.Server

	mu      sync.Mutex
	entries map[string]AccessEntry
	reviews []Review
}

// NewAuthenticator starts the webhook for the cluster named cluster, whose
// tokens it checks against sts, and writes its configuration file in dir.
func NewAuthenticator(sts *Server, cluster, dir string) (*Authenticator, error) {
	a := &Authenticator{sts: sts, cluster: cluster, entries: map[string]AccessEntry{}}
	a.hs = httptest.NewTLSServer(http.HandlerFunc(a.serveHTTP))
	a.URL = a.hs.URL
	a.ConfigFile = filepath.Join(dir, "eks-authenticator-"+cluster+".yaml")
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: authenticator
  cluster:
    server: %s/authenticate
    certificate-authority-data: %s
users:
- name: apiserver
  user: {}
contexts:
- name: webhook
  context: {cluster: authenticator, user: apiserver}
current-context: webhook
`, a.hs.URL, base64.StdEncoding.EncodeToString(certPEM(a.hs)))
	if err := os.WriteFile(a.ConfigFile, []byte(config), 0o600); err != nil {
		a.hs.Close()
		return nil, err
	}
	return a, nil
}

// APIServerFlags are the kube-apiserver flags that consult the authenticator,
// without caching its answers.
func (a *Authenticator) APIServerFlags() []string {
	return []string{
		"--authentication-token-webhook-config-file=" + a.ConfigFile,
		"--authentication-token-webhook-version=v1",
		"--authentication-token-webhook-cache-ttl=0s",
	}
}

// Close stops the webhook.
func (a *Authenticator) Close() { a.hs.Close() }

// AddAccessEntry maps principal (a user's or a role's ARN) to a Kubernetes
// user of the cluster.
func (a *Authenticator) AddAccessEntry(principal string, e AccessEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries[principal] = e
}

// Reviews returns the token reviews answered so far, oldest first.
func (a *Authenticator) Reviews() []Review {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reviews)
}

func (a *Authenticator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var review authv1.TokenReview
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&review); err != nil {
		http.Error(w, "not a TokenReview", http.StatusBadRequest)
		return
	}
	user, reason := a.authenticate(review.Spec.Token)
	a.mu.Lock()
	a.reviews = append(a.reviews, Review{Authenticated: reason == "", Username: user.Username, Reason: reason})
	a.mu.Unlock()
	review.Status = authv1.TokenReviewStatus{}
	if reason == "" {
		review.Status.Authenticated = true
		review.Status.User = user
	} else {
		review.Status.Error = reason
	}
	review.Spec.Token = ""
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

// authenticate checks a token as EKS does and returns its user, or why it is
// refused.
func (a *Authenticator) authenticate(token string) (authv1.UserInfo, string) {
	none := authv1.UserInfo{}
	encoded, ok := strings.CutPrefix(token, "k8s-aws-v1.")
	if !ok {
		return none, "token is not of the k8s-aws-v1 format"
	}
	raw, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil {
		return none, "token is not base64url"
	}
	u, err := url.Parse(string(raw))
	if err != nil {
		return none, "token is not a URL"
	}
	sts, _ := url.Parse(a.sts.URL)
	if u.Scheme != "https" || u.Host != sts.Host || (u.Path != "/" && u.Path != "") {
		return none, "token is not a presigned request of the STS endpoint"
	}
	q := u.Query()
	if q.Get("Action") != "GetCallerIdentity" {
		return none, "token is not a GetCallerIdentity request"
	}
	if !slices.Contains(strings.Split(q.Get("X-Amz-SignedHeaders"), ";"), "x-k8s-aws-id") {
		return none, "token does not sign the x-k8s-aws-id header"
	}
	signedAt, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return none, "token has no X-Amz-Date"
	}
	if age := a.sts.now().Sub(signedAt); age > 15*time.Minute {
		return none, fmt.Sprintf("token expired: signed %s ago, more than 15m", age.Round(time.Second))
	}
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return none, "token is not a request"
	}
	req.Header.Set("x-k8s-aws-id", a.cluster)
	resp, err := a.sts.Client().Do(req)
	if err != nil {
		return none, "STS unreachable: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e ststest.ErrorResponse
		_ = xml.Unmarshal(body, &e)
		return none, fmt.Sprintf("STS refused the token's request: %d %s", resp.StatusCode, e.Error.Code)
	}
	var id CallerIdentity
	if err := xml.Unmarshal(body, &id); err != nil {
		return none, "STS answered no caller identity"
	}
	p := principal(id.Result.Arn)
	a.mu.Lock()
	entry, ok := a.entries[p]
	a.mu.Unlock()
	if !ok {
		return none, fmt.Sprintf("%s has no access entry in cluster %s", p, a.cluster)
	}
	return authv1.UserInfo{
		Username: entry.Username,
		UID:      "aws-iam-authenticator:" + id.Result.Account + ":" + id.Result.UserID,
		Groups:   entry.Groups,
		Extra:    map[string]authv1.ExtraValue{"arn": {id.Result.Arn}},
	}, ""
}

// certPEM is the PEM of a test server's certificate, which is self-signed:
// it is its own CA.
func certPEM(hs *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})
}
