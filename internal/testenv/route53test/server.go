package route53test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// xmlns is the namespace of every Route53 2013-04-01 document.
const xmlns = "https://route53.amazonaws.com/doc/2013-04-01/"

// Options configure a Server. The zero value is a plain HTTP server whose
// changes are INSYNC at once and whose probes run at Route53's intervals.
type Options struct {
	// SyncDelay is how long a change stays PENDING before it is INSYNC and
	// the DNS server answers with it.
	SyncDelay time.Duration
	// ProbeScale multiplies health-check request intervals: 0.01 probes a
	// 30-second check every 300ms. Zero means 1.
	ProbeScale float64
	// TLS serves the API over HTTPS with httptest's self-signed certificate;
	// use Server.Client's transport or trust Server.Certificate.
	TLS bool
	// ClientRegion is the AWS region DNS clients are taken to be closest to,
	// for latency records; empty means us-east-1.
	ClientRegion string
	// Limits are the quotas and request rates enforced; nil means
	// DocumentedLimits, Route53's for a new account.
	Limits *Limits
	// RateScale multiplies every bucket's burst and refill rate of Limits, so
	// that a test runs against Route53's throttling at a higher speed: 10 allows
	// ten times the documented rates. Zero means 1.
	RateScale float64
}

// Server is the in-process Route53 and its DNS server. Its methods are safe
// for concurrent use; Close it when done.
type Server struct {
	// URL is the API endpoint, http(s)://127.0.0.1:PORT, to use as
	// BaseEndpoint.
	URL string
	// DNSAddr is the UDP address, 127.0.0.1:PORT, of the DNS server.
	DNSAddr string

	hs   *httptest.Server
	dnsS *dns.Server
	opts Options

	mu           sync.Mutex
	seq          int
	requests     int
	zones        map[string]*zone // by bare id
	changes      map[string]*change
	checks       map[string]*healthCheck // by id
	checkOrder   []string
	deletedRefs  map[string]bool
	calls        []Call
	faults       map[string][]fault
	clientRegion string
	subnets      []subnetRegion
	closed       bool
	limits       Limits
	buckets      map[string]*tokens // by operation; "" is the account's
	throttled    int

	probing    sync.WaitGroup     // the probe goroutines; Add only with mu held and !closed
	probeCtx   context.Context    // done when Close stops the probes in flight
	stopProbes context.CancelFunc // ends probeCtx
}

type fault struct{ code string }

type subnetRegion struct {
	prefix netip.Prefix
	region string
}

// Call records one API request the server answered.
type Call struct {
	// Operation is the Route53 operation, e.g. "ChangeResourceRecordSets".
	Operation string
	// Error is the error code returned, or empty.
	Error string
}

// NewServer starts the API server and the DNS server on 127.0.0.1. It
// panics if it cannot listen, like httptest.NewServer.
func NewServer(opts Options) *Server {
	if opts.ProbeScale <= 0 {
		opts.ProbeScale = 1
	}
	if opts.RateScale <= 0 {
		opts.RateScale = 1
	}
	limits := DocumentedLimits()
	if opts.Limits != nil {
		limits = *opts.Limits
	}
	s := &Server{
		opts:         opts,
		zones:        map[string]*zone{},
		changes:      map[string]*change{},
		checks:       map[string]*healthCheck{},
		deletedRefs:  map[string]bool{},
		faults:       map[string][]fault{},
		clientRegion: opts.ClientRegion,
		limits:       limits,
	}
	if s.clientRegion == "" {
		s.clientRegion = "us-east-1"
	}
	s.probeCtx, s.stopProbes = context.WithCancel(context.Background())
	s.hs = httptest.NewUnstartedServer(s.routes())
	if opts.TLS {
		s.hs.StartTLS()
	} else {
		s.hs.Start()
	}
	s.URL = s.hs.URL

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		s.hs.Close()
		panic(fmt.Sprintf("route53test: listening for DNS on 127.0.0.1: %v", err))
	}
	s.DNSAddr = pc.LocalAddr().String()
	started := make(chan struct{})
	s.dnsS = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serveDNS), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = s.dnsS.ActivateAndServe() }()
	<-started
	return s
}

// Client returns an HTTP client that trusts the server's certificate when
// it serves TLS.
func (s *Server) Client() *http.Client { return s.hs.Client() }

// Close stops the prober, the DNS server and the API server, and returns once
// the probes in flight (cut short), the DNS queries and the API requests in
// flight are done.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for _, hc := range s.checks {
		hc.stopProbe()
	}
	s.mu.Unlock()
	s.stopProbes()
	s.probing.Wait()
	_ = s.dnsS.Shutdown()
	s.hs.Close()
}

// FailNext makes the next n requests of operation (e.g.
// "ChangeResourceRecordSets", or "*" for any) fail with code before doing
// anything: "Throttling" (HTTP 400, "Rate exceeded"),
// "PriorRequestNotComplete" (HTTP 400) or any other code (HTTP 400).
func (s *Server) FailNext(operation, code string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[operation] = append(s.faults[operation], fault{code: code})
	}
}

// Count returns how many requests of operation the server received,
// including refused ones.
func (s *Server) Count(operation string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Operation == operation {
			n++
		}
	}
	return n
}

// Calls returns the requests answered so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// SetClientRegion sets the AWS region DNS clients without a mapped EDNS
// client subnet are taken to be closest to.
func (s *Server) SetClientRegion(region string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clientRegion = region
}

// MapSubnet makes DNS queries whose EDNS client subnet lies in prefix come
// from region, the way Route53 maps client networks to latency regions.
func (s *Server) MapSubnet(prefix netip.Prefix, region string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subnets = append(s.subnets, subnetRegion{prefix: prefix.Masked(), region: region})
}

// apiError is a Route53 error: its code, message and HTTP status.
type apiError struct {
	status   int
	code     string
	message  string
	messages []string // InvalidChangeBatch only
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func invalidInput(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "InvalidInput", format, args...)
}

// handler is one operation: it reads the request and returns the response
// document, or an error.
type handler func(r *http.Request, body []byte) (status int, doc any, err *apiError)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	p := "/2013-04-01"
	handle := func(pattern, op string, h handler) { mux.Handle(pattern, s.operation(op, h)) }
	handle("POST "+p+"/hostedzone", "CreateHostedZone", s.createHostedZone)
	handle("GET "+p+"/hostedzone", "ListHostedZones", s.listHostedZones)
	handle("GET "+p+"/hostedzone/{id}", "GetHostedZone", s.getHostedZone)
	handle("GET "+p+"/hostedzonesbyname", "ListHostedZonesByName", s.listHostedZonesByName)
	handle("GET "+p+"/hostedzone/{id}/rrset", "ListResourceRecordSets", s.listResourceRecordSets)
	handle("POST "+p+"/hostedzone/{id}/rrset", "ChangeResourceRecordSets", s.changeResourceRecordSets)
	handle("POST "+p+"/hostedzone/{id}/rrset/", "ChangeResourceRecordSets", s.changeResourceRecordSets)
	handle("GET "+p+"/change/{id}", "GetChange", s.getChange)
	handle("POST "+p+"/healthcheck", "CreateHealthCheck", s.createHealthCheck)
	handle("GET "+p+"/healthcheck", "ListHealthChecks", s.listHealthChecks)
	handle("GET "+p+"/healthcheck/{id}", "GetHealthCheck", s.getHealthCheck)
	handle("POST "+p+"/healthcheck/{id}", "UpdateHealthCheck", s.updateHealthCheck)
	handle("DELETE "+p+"/healthcheck/{id}", "DeleteHealthCheck", s.deleteHealthCheck)
	handle("GET "+p+"/healthcheck/{id}/status", "GetHealthCheckStatus", s.getHealthCheckStatus)
	handle("GET "+p+"/tags/{type}/{id}", "ListTagsForResource", s.listTagsForResource)
	handle("POST "+p+"/tags/{type}/{id}", "ChangeTagsForResource", s.changeTagsForResource)
	handle("POST "+p+"/tags/{type}", "ListTagsForResources", s.listTagsForResources)
	handle("GET "+p+"/accountlimit/{type}", "GetAccountLimit", s.getAccountLimit)
	handle("GET "+p+"/hostedzonelimit/{id}/{type}", "GetHostedZoneLimit", s.getHostedZoneLimit)
	mux.Handle("/", s.operation("Unknown", func(r *http.Request, _ []byte) (int, any, *apiError) {
		return 0, nil, errorf(http.StatusNotFound, "UnknownOperationException", "%s %s is not an operation this Route53 test server implements", r.Method, r.URL.Path)
	}))
	return mux
}

func (s *Server) operation(op string, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.requests++
		reqID := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.requests)
		var apiErr *apiError
		if f := s.takeFault(op); f != nil {
			apiErr = f
		} else if op != "Unknown" {
			apiErr = s.throttleLocked(op)
		}
		s.mu.Unlock()

		status, doc := http.StatusOK, any(nil)
		if apiErr == nil {
			apiErr = authenticate(r)
		}
		if apiErr == nil {
			status, doc, apiErr = h(r, body)
		}
		call := Call{Operation: op}
		if apiErr != nil {
			call.Error = apiErr.code
		}
		s.mu.Lock()
		s.calls = append(s.calls, call)
		s.mu.Unlock()

		w.Header().Set("x-amzn-RequestId", reqID)
		if apiErr != nil {
			writeError(w, apiErr, reqID)
			return
		}
		if status == 0 {
			status = http.StatusOK
		}
		writeXML(w, status, doc)
	})
}

// takeFault pops an injected failure for op; s.mu is held.
func (s *Server) takeFault(op string) *apiError {
	for _, key := range []string{op, "*"} {
		q := s.faults[key]
		if len(q) == 0 {
			continue
		}
		s.faults[key] = q[1:]
		switch q[0].code {
		case "Throttling":
			return errorf(http.StatusBadRequest, "Throttling", "Rate exceeded")
		case "PriorRequestNotComplete":
			return priorRequestNotComplete()
		default:
			return errorf(http.StatusBadRequest, q[0].code, "injected %s", q[0].code)
		}
	}
	return nil
}

// authenticate requires a Signature Version 4 for the route53 service; it
// does not verify the signature itself.
func authenticate(r *http.Request) *apiError {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return errorf(http.StatusForbidden, "MissingAuthenticationToken", "Missing Authentication Token")
	}
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, "/route53/aws4_request") {
		return errorf(http.StatusForbidden, "IncompleteSignature", "Authorization header must be a Signature Version 4 for the route53 service")
	}
	return nil
}

type errorResponse struct {
	XMLName   xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ErrorResponse"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

// invalidChangeBatch is the root element Route53 uses, instead of
// ErrorResponse, for InvalidChangeBatch.
type invalidChangeBatch struct {
	XMLName   xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ InvalidChangeBatch"`
	Messages  []string `xml:"Messages>Message"`
	RequestID string   `xml:"RequestId"`
}

func writeError(w http.ResponseWriter, e *apiError, reqID string) {
	if e.code == "InvalidChangeBatch" {
		writeXML(w, e.status, invalidChangeBatch{Messages: e.messages, RequestID: reqID})
		return
	}
	writeXML(w, e.status, errorResponse{Type: "Sender", Code: e.code, Message: e.message, RequestID: reqID})
}

func writeXML(w http.ResponseWriter, status int, doc any) {
	out, err := xml.Marshal(doc)
	if err != nil {
		http.Error(w, "route53test: encoding the response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}

// decode reads a request document into v.
func decode(body []byte, v any) *apiError {
	if err := xml.Unmarshal(body, v); err != nil {
		return invalidInput("Invalid XML ; %v", err)
	}
	return nil
}

// bareID strips the "/hostedzone/", "/change/" or "/healthcheck/" prefix
// Route53 puts on ids.
func bareID(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

func (s *Server) now() time.Time { return time.Now().UTC() }

func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
