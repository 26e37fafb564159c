package route53test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// startProbe starts probing hc's target with its current configuration;
// s.mu is held. A disabled check is healthy and not probed, as in Route53.
func (s *Server) startProbe(hc *healthCheck) {
	if s.closed {
		return
	}
	if *hc.config.Disabled {
		hc.healthy, hc.streak, hc.report = true, 0, "health check is disabled"
		return
	}
	stop := make(chan struct{})
	hc.stop = stop
	cfg := hc.config
	interval := time.Duration(float64(time.Duration(*cfg.RequestInterval)*time.Second) * s.opts.ProbeScale)
	interval = max(interval, 10*time.Millisecond)
	timeout := min(max(interval, 200*time.Millisecond), 4*time.Second)
	s.probing.Add(1)
	go func() {
		defer s.probing.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			ok, report := probe(s.probeCtx, cfg, timeout)
			s.mu.Lock()
			if hc.stop != stop { // stopped, or restarted with a new configuration
				s.mu.Unlock()
				return
			}
			hc.record(ok, report, int(*cfg.FailureThreshold), s.now())
			s.mu.Unlock()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
}

// record applies one probe result: the state flips after threshold
// consecutive results that disagree with it.
func (hc *healthCheck) record(ok bool, report string, threshold int, now time.Time) {
	if *hc.config.Inverted {
		ok = !ok
	}
	hc.report, hc.checkedAt = report, now
	if ok == hc.healthy {
		hc.streak = 0
		return
	}
	hc.streak++
	if hc.streak >= threshold {
		hc.healthy, hc.streak = ok, 0
	}
}

// probe makes one request to the check's target, as a Route53 checker
// does: HTTP(S) must answer 2xx or 3xx (and contain SearchString in the
// first 5,120 bytes for the _STR_MATCH types); TCP must accept a
// connection. Certificates are not verified, like Route53.
func probe(ctx context.Context, cfg healthCheckConfig, timeout time.Duration) (bool, string) {
	host := cfg.IPAddress
	if host == "" {
		host = cfg.FullyQualifiedDomainName
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(*cfg.Port)))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if cfg.Type == "TCP" {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, "TCP connection established"
	}
	scheme := "http"
	defaultPort := int32(80)
	if strings.HasPrefix(cfg.Type, "HTTPS") {
		scheme, defaultPort = "https", 443
	}
	hostHeader := cfg.FullyQualifiedDomainName
	if hostHeader == "" {
		hostHeader = cfg.IPAddress
	}
	if *cfg.Port != defaultPort {
		hostHeader = net.JoinHostPort(hostHeader, strconv.Itoa(int(*cfg.Port)))
	}
	path := cfg.ResourcePath
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+path, nil)
	if err != nil {
		return false, "invalid request: " + err.Error()
	}
	req.Host = hostHeader
	req.Header.Set("User-Agent", "Amazon-Route53-Health-Check-Service (ref route53test; report http://amazonwebservices.com/route53-health-check-service-help)")
	tlsCfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // Route53 checkers do not verify certificates
	if *cfg.EnableSNI && cfg.FullyQualifiedDomainName != "" {
		tlsCfg.ServerName = cfg.FullyQualifiedDomainName
	}
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 5120))
	report := fmt.Sprintf("HTTP Status Code %d, %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return false, report
	}
	if strings.HasSuffix(cfg.Type, "_STR_MATCH") && !strings.Contains(string(body), cfg.SearchString) {
		return false, report + ", the response body does not contain the search string"
	}
	return true, report
}
