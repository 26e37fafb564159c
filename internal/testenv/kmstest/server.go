package kmstest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Account is the AWS account id of every key and identity the server makes.
const Account = "111122223333"

// Server is the in-memory KMS and STS. Its methods are safe for concurrent
// use; Close it when done.
type Server struct {
	// URL is the endpoint, http://127.0.0.1:PORT, to use as BaseEndpoint.
	URL string

	hs *httptest.Server

	mu       sync.Mutex
	seq      int
	requests int
	keys     map[string]*key        // by ARN
	creds    map[string]*credential // by access key id
	roles    map[string][]string    // role ARN → keys it may use (nil: all)
	calls    []Call
}

type key struct {
	arn, region string
	material    []byte
	disabled    bool
}

type credential struct {
	secret   string
	token    string   // set for credentials issued by AssumeRole
	identity string   // the principal's ARN, for AccessDenied messages
	keys     []string // key ARNs it may use; nil means all
	expires  time.Time
}

// Call records one request the server answered.
type Call struct {
	// Service is "kms" or "sts".
	Service string
	// Operation is the action, e.g. "Decrypt" or "AssumeRole".
	Operation string
	// Region is the region of the request's signature.
	Region string
	// AccessKeyID signed the request.
	AccessKeyID string
	// Key is the ARN of the KMS key used, when one was found.
	Key string
	// Error is the error code returned, or empty.
	Error string
}

// NewServer starts a server on 127.0.0.1 with no keys and no credentials.
func NewServer() *Server {
	s := &Server{keys: map[string]*key{}, creds: map[string]*credential{}, roles: map[string][]string{}}
	s.hs = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.hs.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.hs.Close() }

// CreateKey creates an enabled symmetric key in region and returns its ARN.
func (s *Server) CreateKey(region string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	material := make([]byte, 32)
	if _, err := rand.Read(material); err != nil {
		panic(err)
	}
	arn := fmt.Sprintf("arn:aws:kms:%s:%s:key/%08x-0000-4000-8000-%012x", region, Account, s.seq, s.seq)
	s.keys[arn] = &key{arn: arn, region: region, material: material}
	return arn
}

// DisableKey disables the key; requests that use it get DisabledException.
func (s *Server) DisableKey(arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[arn]; ok {
		k.disabled = true
	}
}

// AddCredentials accepts requests signed with this access key pair. With
// keyARNs the credentials may use only those keys; other keys get
// AccessDeniedException.
func (s *Server) AddCredentials(accessKeyID, secretAccessKey string, keyARNs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds[accessKeyID] = &credential{
		secret:   secretAccessKey,
		identity: fmt.Sprintf("arn:aws:iam::%s:user/%s", Account, accessKeyID),
		keys:     keyARNs,
	}
}

// AddRole lets any known credentials assume roleARN through STS AssumeRole;
// the temporary credentials may use only keyARNs (all keys when none given).
func (s *Server) AddRole(roleARN string, keyARNs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[roleARN] = keyARNs
}

// Calls returns the requests answered so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// apiError is an AWS error: its code (the exception name), message and HTTP
// status.
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
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		s.serveKMS(w, r, target, body)
		return
	}
	s.serveSTS(w, r, body)
}

// newRequestID numbers the responses, so that error messages that quote
// the request id are the same in every test run.
func (s *Server) newRequestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", s.requests)
}

// encryptionContextAAD is the additional authenticated data binding a
// ciphertext to its encryption context (JSON sorts map keys).
func encryptionContextAAD(ctx map[string]string) []byte {
	if len(ctx) == 0 {
		return []byte("{}")
	}
	b, _ := json.Marshal(ctx)
	return b
}

// The ciphertext blob: magic, the key ARN (length-prefixed), a nonce and the
// AES-256-GCM sealed plaintext.
var blobMagic = []byte("kmstest1")

func seal(k *key, plaintext []byte, ctx map[string]string) ([]byte, error) {
	gcm, err := newGCM(k.material)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := slices.Clone(blobMagic)
	out = binary.BigEndian.AppendUint16(out, uint16(len(k.arn)))
	out = append(out, k.arn...)
	out = append(out, nonce...)
	return gcm.Seal(out, nonce, plaintext, encryptionContextAAD(ctx)), nil
}

// blobKey returns the key ARN a ciphertext blob names.
func blobKey(blob []byte) (string, []byte, bool) {
	if len(blob) < len(blobMagic)+2 || string(blob[:len(blobMagic)]) != string(blobMagic) {
		return "", nil, false
	}
	rest := blob[len(blobMagic):]
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < n {
		return "", nil, false
	}
	return string(rest[:n]), rest[n:], true
}

func open(k *key, sealed []byte, ctx map[string]string) ([]byte, bool) {
	gcm, err := newGCM(k.material)
	if err != nil || len(sealed) < gcm.NonceSize() {
		return nil, false
	}
	plain, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], encryptionContextAAD(ctx))
	return plain, err == nil
}

func newGCM(material []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(material)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// formValues parses an awsquery (STS) body.
func formValues(r *http.Request, body []byte) (url.Values, error) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return nil, errors.New("not a form")
	}
	return url.ParseQuery(string(body))
}
