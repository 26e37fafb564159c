package ekstest

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"meridian.dev/meridian/internal/testenv/sigv4test"
	"meridian.dev/meridian/internal/testenv/ststest"
)

// Account is the AWS account id of every identity and cluster the server makes.
const Account = "111122223333"

// Server is the in-memory EKS and STS, served over HTTPS on 127.0.0.1. Its
// methods are safe for concurrent use; Close it when done.
type Server struct {
	// URL is the endpoint, https://127.0.0.1:PORT, of both APIs: use it as
	// the BaseEndpoint of the eks and sts clients.
	URL string
	// CA is the PEM certificate the server's own certificate is signed with.
	CA []byte

	hs  *httptest.Server
	now func() time.Time

	mu       sync.Mutex
	seq      int
	requests int
	creds    map[string]*credential // by access key id
	roles    map[string][]string    // role ARN → principals that may assume it (nil: any)
	clusters map[string]*Cluster    // by region + "/" + name
	calls    []Call
}

// credential is an access key the server accepts.
type credential struct {
	secret   string
	token    string // set for credentials issued by AssumeRole
	identity string // the principal's ARN as GetCallerIdentity returns it
	userID   string
	expires  time.Time
}

// Cluster is an EKS cluster the server describes.
type Cluster struct {
	// Name and Region identify the cluster.
	Name, Region string
	// Endpoint is the API server's URL.
	Endpoint string
	// CA is the PEM certificate of the API server's CA.
	CA []byte
	// Describers are the principal ARNs allowed eks:DescribeCluster on it (a
	// role's ARN for its sessions); empty means every known principal.
	Describers []string
}

// Call records one request the server answered.
type Call struct {
	// Service is "eks" or "sts".
	Service string
	// Operation is the action, e.g. "DescribeCluster", "AssumeRole" or
	// "GetCallerIdentity".
	Operation string
	// AccessKeyID signed the request, when the signature named one.
	AccessKeyID string
	// Presigned says the signature was in the query string.
	Presigned bool
	// Error is the error code returned, or empty.
	Error string
}

// NewServer starts a server with no credentials, roles or clusters.
func NewServer() *Server {
	s := &Server{
		now:      time.Now,
		creds:    map[string]*credential{},
		roles:    map[string][]string{},
		clusters: map[string]*Cluster{},
	}
	s.hs = httptest.NewTLSServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.hs.URL
	s.CA = certPEM(s.hs)
	return s
}

// Close stops the server.
func (s *Server) Close() { s.hs.Close() }

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.hs.Client() }

// AddCredentials accepts requests signed with this access key pair, of the IAM
// user arn:aws:iam::Account:user/<user>, and returns that ARN.
func (s *Server) AddCredentials(accessKeyID, secretAccessKey, user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	arn := fmt.Sprintf("arn:aws:iam::%s:user/%s", Account, user)
	s.creds[accessKeyID] = &credential{secret: secretAccessKey, identity: arn, userID: "AIDA" + strings.ToUpper(hex.EncodeToString([]byte(user)))}
	return arn
}

// AddRole lets principals (ARNs of users) assume roleARN through STS
// AssumeRole; none given means any known principal.
func (s *Server) AddRole(roleARN string, principals ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[roleARN] = principals
}

// AddCluster makes an EKS cluster DescribeCluster describes.
func (s *Server) AddCluster(c Cluster) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clusters[c.Region+"/"+c.Name] = &c
}

// Calls returns the requests answered so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// signed is who signed a request, as its signature proved it.
type signed struct {
	*sigv4test.Signed
	cred *credential
}

// The error codes and statuses STS and EKS answer a refused signature with.
var (
	stsCodes = map[sigv4test.Kind]apiError{
		sigv4test.Missing:      {403, "MissingAuthenticationToken", ""},
		sigv4test.Incomplete:   {400, "IncompleteSignature", ""},
		sigv4test.Expired:      {403, "SignatureDoesNotMatch", ""},
		sigv4test.UnknownKey:   {403, "InvalidClientTokenId", ""},
		sigv4test.ExpiredToken: {403, "ExpiredToken", ""},
		sigv4test.Mismatch:     {403, "SignatureDoesNotMatch", ""},
	}
	eksCodes = map[sigv4test.Kind]apiError{
		sigv4test.Missing:      {403, "MissingAuthenticationTokenException", ""},
		sigv4test.Incomplete:   {400, "IncompleteSignatureException", ""},
		sigv4test.Expired:      {403, "InvalidSignatureException", ""},
		sigv4test.UnknownKey:   {403, "UnrecognizedClientException", ""},
		sigv4test.ExpiredToken: {403, "ExpiredTokenException", ""},
		sigv4test.Mismatch:     {403, "InvalidSignatureException", ""},
	}
)

// verify checks the request's Signature Version 4, in its header or its
// presigned query string, against the server's credentials; codes are the
// service's answers to a refused one.
func (s *Server) verify(r *http.Request, body []byte, codes map[sigv4test.Kind]apiError) (*signed, *apiError) {
	var cred *credential
	sg, f := sigv4test.Verify(r, body, s.now(), func(akid string) (sigv4test.Credential, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		c, ok := s.creds[akid]
		if !ok {
			return sigv4test.Credential{}, false
		}
		cred = c
		return sigv4test.Credential{Secret: c.secret, Token: c.token, Expires: c.expires}, true
	})
	if f != nil {
		e := codes[f.Kind]
		e.message = f.Message
		return nil, &e
	}
	return &signed{Signed: sg, cred: cred}, nil
}

// apiError is an AWS error: its code, message and HTTP status.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/clusters/") {
		s.serveEKS(w, r, body)
		return
	}
	s.serveSTS(w, r, body)
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

func (s *Server) newRequestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", s.requests)
}

// principal is the ARN policies name for an identity: the role of an assumed
// role's session, else the identity itself.
func principal(identity string) string {
	rest, ok := strings.CutPrefix(identity, "arn:aws:sts::")
	if !ok {
		return identity
	}
	account, role, ok := strings.Cut(rest, ":assumed-role/")
	if !ok {
		return identity
	}
	name, _, _ := strings.Cut(role, "/")
	return "arn:aws:iam::" + account + ":role/" + name
}

// serveEKS answers EKS's REST-JSON protocol; only DescribeCluster
// (GET /clusters/{name}) is known.
func (s *Server) serveEKS(w http.ResponseWriter, r *http.Request, body []byte) {
	call := Call{Service: "eks", Operation: "DescribeCluster"}
	out, aerr := s.describeCluster(r, body, &call)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Requestid", s.newRequestID())
	if aerr != nil {
		call.Error = aerr.code
		s.record(call)
		w.Header().Set("X-Amzn-Errortype", aerr.code)
		w.WriteHeader(aerr.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": aerr.message})
		return
	}
	s.record(call)
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) describeCluster(r *http.Request, body []byte, call *Call) (any, *apiError) {
	name, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/clusters/"))
	if r.Method != http.MethodGet || err != nil || name == "" || strings.Contains(name, "/") {
		return nil, errorf(404, "UnknownOperationException", "Unknown operation %s %s", r.Method, r.URL.Path)
	}
	sg, aerr := s.verify(r, body, eksCodes)
	if aerr != nil {
		return nil, aerr
	}
	call.AccessKeyID = sg.AccessKeyID
	if sg.Service != "eks" {
		return nil, errorf(403, "InvalidSignatureException", "Credential should be scoped to correct service: 'eks'.")
	}
	s.mu.Lock()
	c, ok := s.clusters[sg.Region+"/"+name]
	s.mu.Unlock()
	if !ok {
		return nil, errorf(404, "ResourceNotFoundException", "No cluster found for name: %s.", name)
	}
	arn := fmt.Sprintf("arn:aws:eks:%s:%s:cluster/%s", c.Region, Account, c.Name)
	if len(c.Describers) > 0 && !slices.Contains(c.Describers, principal(sg.cred.identity)) {
		return nil, errorf(403, "AccessDeniedException", "User: %s is not authorized to perform: eks:DescribeCluster on resource: %s", sg.cred.identity, arn)
	}
	type ca struct {
		Data string `json:"data"`
	}
	type cluster struct {
		Name                 string  `json:"name"`
		Arn                  string  `json:"arn"`
		CreatedAt            float64 `json:"createdAt"`
		Version              string  `json:"version"`
		Endpoint             string  `json:"endpoint"`
		Status               string  `json:"status"`
		CertificateAuthority ca      `json:"certificateAuthority"`
		PlatformVersion      string  `json:"platformVersion"`
	}
	return map[string]cluster{"cluster": {
		Name:                 c.Name,
		Arn:                  arn,
		CreatedAt:            1.7e9,
		Version:              "1.37",
		Endpoint:             c.Endpoint,
		Status:               "ACTIVE",
		CertificateAuthority: ca{Data: base64.StdEncoding.EncodeToString(c.CA)},
		PlatformVersion:      "eks.1",
	}}, nil
}

// CallerIdentity is the result of STS GetCallerIdentity.
type CallerIdentity = ststest.CallerIdentity

// serveSTS answers STS's query protocol: AssumeRole (POST) and
// GetCallerIdentity (POST, or GET with a presigned URL).
func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, body []byte) {
	call := Call{Service: "sts"}
	out, aerr := s.sts(r, body, &call)
	reqID := s.newRequestID()
	if aerr != nil {
		call.Error = aerr.code
		s.record(call)
		ststest.WriteError(w, aerr.status, aerr.code, aerr.message, reqID)
		return
	}
	s.record(call)
	ststest.WriteResult(w, out, reqID)
}

func (s *Server) sts(r *http.Request, body []byte, call *Call) (any, *apiError) {
	var form url.Values
	switch r.Method {
	case http.MethodGet:
		form = r.URL.Query()
	case http.MethodPost:
		var err error
		if form, err = url.ParseQuery(string(body)); err != nil {
			return nil, errorf(400, "InvalidAction", "Could not find operation for this request")
		}
	default:
		return nil, errorf(400, "InvalidAction", "Could not find operation for this request")
	}
	call.Operation = form.Get("Action")
	call.Presigned = r.URL.Query().Get("X-Amz-Signature") != ""
	sg, aerr := s.verify(r, body, stsCodes)
	if aerr != nil {
		return nil, aerr
	}
	call.AccessKeyID = sg.AccessKeyID
	if sg.Service != "sts" {
		return nil, errorf(403, "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sts'.")
	}
	if form.Get("Version") != "2011-06-15" {
		return nil, errorf(400, "InvalidAction", "Could not find operation %s for version %s", call.Operation, form.Get("Version"))
	}
	switch call.Operation {
	case "GetCallerIdentity":
		out := &CallerIdentity{}
		out.Result.Arn, out.Result.UserID, out.Result.Account = sg.cred.identity, sg.cred.userID, Account
		return out, nil
	case "AssumeRole":
		return s.assumeRole(sg, form)
	}
	return nil, errorf(400, "InvalidAction", "Could not find operation %s for version %s", call.Operation, form.Get("Version"))
}

func (s *Server) assumeRole(sg *signed, form url.Values) (any, *apiError) {
	role, sessionName := form.Get("RoleArn"), form.Get("RoleSessionName")
	if role == "" || sessionName == "" {
		return nil, errorf(400, "ValidationError", "RoleArn and RoleSessionName are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	trusted, ok := s.roles[role]
	if !ok || (len(trusted) > 0 && !slices.Contains(trusted, principal(sg.cred.identity))) {
		return nil, errorf(403, "AccessDenied", "User: %s is not authorized to perform: sts:AssumeRole on resource: %s", sg.cred.identity, role)
	}
	s.seq++
	session := ststest.NewSession(Account, role, sessionName, "ASIAEKSTEST", "AROAEKSTEST", s.seq, s.now())
	s.creds[session.AccessKeyID] = &credential{
		secret:   session.SecretAccessKey,
		token:    session.SessionToken,
		identity: session.Identity,
		userID:   session.RoleID,
		expires:  session.Expires,
	}
	return session.Response(), nil
}
