package route53test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// query asks the server's DNS over UDP with a real DNS client and returns
// the rcode and the answer as zone-file lines.
func query(t *testing.T, srv *Server, name string, qtype uint16, subnet string) (string, []string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if subnet != "" {
		p := netip.MustParsePrefix(subnet)
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(1232)
		opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(p.Bits()), Address: net.IP(p.Addr().AsSlice())})
		m.Extra = append(m.Extra, opt)
	}
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	resp, _, err := c.Exchange(m, srv.DNSAddr)
	if err != nil {
		t.Fatalf("DNS query %s: %v", name, err)
	}
	if !resp.Authoritative && resp.Rcode != dns.RcodeRefused {
		t.Errorf("answer for %s is not authoritative", name)
	}
	var lines []string
	for _, rr := range resp.Answer {
		lines = append(lines, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	if len(resp.Answer) == 0 && len(resp.Ns) > 0 {
		lines = append(lines, "authority "+dns.TypeToString[resp.Ns[0].Header().Rrtype])
	}
	return dns.RcodeToString[resp.Rcode], lines
}

func TestDNSAnswers(t *testing.T) {
	srv, c := newServer(t, Options{ClientRegion: "eu-central-1"})
	ctx := context.Background()
	zoneID := srv.CreateZone("fleet.example.com")
	srv.CreateZone("lb.example.net")
	srv.MapSubnet(netip.MustParsePrefix("198.51.100.0/24"), "ap-northeast-1")
	txt := types.ResourceRecordSet{Name: aws.String("_meridian.web.trucking.fleet.example.com"), Type: types.RRTypeTxt, TTL: ttl(300),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String(`"heritage=meridian"`)}}}
	cname := types.ResourceRecordSet{Name: aws.String("docs.fleet.example.com"), Type: types.RRTypeCname, TTL: ttl(300),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String("web.trucking.fleet.example.com")}}}
	aliasTo := func(name, region, target string) types.ResourceRecordSet {
		return types.ResourceRecordSet{Name: aws.String(name), Type: types.RRTypeA, SetIdentifier: aws.String(region), Region: types.ResourceRecordSetRegion(region),
			AliasTarget: &types.AliasTarget{HostedZoneId: aws.String(zoneID), DNSName: aws.String(target), EvaluateTargetHealth: true}}
	}
	lbZone := ""
	zones, err := c.ListHostedZonesByName(ctx, &route53.ListHostedZonesByNameInput{DNSName: aws.String("lb.example.net")})
	if err != nil {
		t.Fatal(err)
	}
	lbZone = aws.ToString(zones.HostedZones[0].Id)
	if _, err := changeRecords(ctx, c, lbZone, chg(types.ChangeActionCreate, a("ap.lb.example.net", "203.0.113.30"))); err != nil {
		t.Fatal(err)
	}
	apAlias := aliasTo("web.trucking.fleet.example.com", "ap-northeast-1", "ap.lb.example.net")
	apAlias.AliasTarget.HostedZoneId = aws.String(lbZone)
	if _, err := changeRecords(ctx, c, zoneID,
		chg(types.ChangeActionCreate, a("web.trucking.eu-west-1.fleet.example.com", "192.0.2.10")),
		chg(types.ChangeActionCreate, a("web.trucking.us-east-1.fleet.example.com", "192.0.2.20")),
		chg(types.ChangeActionCreate, aliasTo("web.trucking.fleet.example.com", "eu-west-1", "web.trucking.eu-west-1.fleet.example.com")),
		chg(types.ChangeActionCreate, aliasTo("web.trucking.fleet.example.com", "us-east-1", "web.trucking.us-east-1.fleet.example.com")),
		chg(types.ChangeActionCreate, apAlias),
		chg(types.ChangeActionCreate, txt),
		chg(types.ChangeActionCreate, cname),
	); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, qname, subnet, region string
		qtype                       uint16
		wantRcode                   string
		want                        []string
	}{
		{name: "A record", qname: "web.trucking.us-east-1.fleet.example.com", qtype: dns.TypeA, wantRcode: "NOERROR",
			want: []string{"web.trucking.us-east-1.fleet.example.com. 60 IN A 192.0.2.20"}},
		{name: "latency alias for the nearest region", qname: "web.trucking.fleet.example.com", qtype: dns.TypeA, wantRcode: "NOERROR",
			want: []string{"web.trucking.fleet.example.com. 60 IN A 192.0.2.10"}},
		{name: "latency alias for a client in us-east-2", qname: "web.trucking.fleet.example.com", region: "us-east-2", qtype: dns.TypeA, wantRcode: "NOERROR",
			want: []string{"web.trucking.fleet.example.com. 60 IN A 192.0.2.20"}},
		{name: "latency by EDNS client subnet, alias into another served zone", qname: "web.trucking.fleet.example.com", subnet: "198.51.100.0/24", qtype: dns.TypeA, wantRcode: "NOERROR",
			want: []string{"web.trucking.fleet.example.com. 60 IN A 203.0.113.30"}},
		{name: "TXT", qname: "_meridian.web.trucking.fleet.example.com", qtype: dns.TypeTXT, wantRcode: "NOERROR",
			want: []string{`_meridian.web.trucking.fleet.example.com. 300 IN TXT "heritage=meridian"`}},
		{name: "CNAME followed within the zone", qname: "docs.fleet.example.com", qtype: dns.TypeA, wantRcode: "NOERROR",
			want: []string{"docs.fleet.example.com. 300 IN CNAME web.trucking.fleet.example.com.", "web.trucking.fleet.example.com. 60 IN A 192.0.2.10"}},
		{name: "name that does not exist", qname: "nope.fleet.example.com", qtype: dns.TypeA, wantRcode: "NXDOMAIN", want: []string{"authority SOA"}},
		{name: "empty non-terminal", qname: "trucking.fleet.example.com", qtype: dns.TypeA, wantRcode: "NOERROR", want: []string{"authority SOA"}},
		{name: "type the name does not have", qname: "web.trucking.us-east-1.fleet.example.com", qtype: dns.TypeAAAA, wantRcode: "NOERROR", want: []string{"authority SOA"}},
		{name: "zone not served", qname: "example.org", qtype: dns.TypeA, wantRcode: "REFUSED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.SetClientRegion(cmpOr(tt.region, "eu-central-1"))
			rcode, got := query(t, srv, tt.qname, tt.qtype, tt.subnet)
			if rcode != tt.wantRcode {
				t.Errorf("rcode = %s, want %s", rcode, tt.wantRcode)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestDNSServesOnlyInsyncChanges(t *testing.T) {
	srv, c := newServer(t, Options{SyncDelay: 300 * time.Millisecond})
	zoneID := srv.CreateZone("fleet.example.com")
	if _, err := changeRecords(context.Background(), c, zoneID, chg(types.ChangeActionCreate, a("web.fleet.example.com", "192.0.2.1"))); err != nil {
		t.Fatal(err)
	}
	if rcode, _ := query(t, srv, "web.fleet.example.com", dns.TypeA, ""); rcode != "NXDOMAIN" {
		t.Errorf("while PENDING: %s, want NXDOMAIN", rcode)
	}
	waitFor(t, "the record answered once INSYNC", 3*time.Second, func() bool {
		_, got := query(t, srv, "web.fleet.example.com", dns.TypeA, "")
		return slices.Equal(got, []string{"web.fleet.example.com. 60 IN A 192.0.2.1"})
	})
}

// target is an HTTP endpoint whose health path answers 200 or 500 as told.
type target struct {
	*httptest.Server
	failing atomic.Bool
	hits    atomic.Int64
}

func newTarget(t *testing.T) *target {
	tg := &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		tg.hits.Add(1)
		if tg.failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) port(t *testing.T) int32 {
	_, p, _ := net.SplitHostPort(tg.Listener.Addr().String())
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

func TestHealthProbingFailsOverDNS(t *testing.T) {
	// A 10-second check probed every 100ms: failover within a few hundred ms.
	srv, c := newServer(t, Options{ProbeScale: 0.01, RateScale: 100, ClientRegion: "eu-west-1"})
	ctx := context.Background()
	zoneID := srv.CreateZone("fleet.example.com")
	eu, us := newTarget(t), newTarget(t)
	checks := map[string]string{}
	for region, tg := range map[string]*target{"eu-west-1": eu, "us-east-1": us} {
		out, err := c.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String(region), HealthCheckConfig: httpCheck(tg.port(t), "/healthz")})
		if err != nil {
			t.Fatal(err)
		}
		checks[region] = aws.ToString(out.HealthCheck.Id)
	}
	if _, err := changeRecords(ctx, c, zoneID,
		chg(types.ChangeActionCreate, latency("web.trucking.fleet.example.com", "eu-west-1", checks["eu-west-1"], "192.0.2.10")),
		chg(types.ChangeActionCreate, latency("web.trucking.fleet.example.com", "us-east-1", checks["us-east-1"], "192.0.2.20")),
	); err != nil {
		t.Fatal(err)
	}
	status := func(id string) []string {
		out, err := c.GetHealthCheckStatus(ctx, &route53.GetHealthCheckStatusInput{HealthCheckId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, o := range out.HealthCheckObservations {
			s = append(s, aws.ToString(o.StatusReport.Status))
		}
		return slices.Compact(s)
	}
	answer := func() string {
		_, got := query(t, srv, "web.trucking.fleet.example.com", dns.TypeA, "")
		return strings.Join(got, ",")
	}
	const euAnswer, usAnswer = "web.trucking.fleet.example.com. 60 IN A 192.0.2.10", "web.trucking.fleet.example.com. 60 IN A 192.0.2.20"

	waitFor(t, "the first probe", 2*time.Second, func() bool { return eu.hits.Load() > 0 })
	waitFor(t, "eu-west-1 reported healthy", 2*time.Second, func() bool {
		return slices.Equal(status(checks["eu-west-1"]), []string{"Success: HTTP Status Code 200, OK"})
	})
	if got := answer(); got != euAnswer {
		t.Errorf("both healthy: answer %q, want eu-west-1's %q", got, euAnswer)
	}

	start := time.Now()
	eu.failing.Store(true)
	waitFor(t, "eu-west-1 reported unhealthy", 3*time.Second, func() bool {
		return slices.Equal(status(checks["eu-west-1"]), []string{"Failure: HTTP Status Code 500, Internal Server Error"})
	})
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("unhealthy after %v, want FailureThreshold (2) probes 100ms apart", d)
	}
	if got := answer(); got != usAnswer {
		t.Errorf("eu-west-1 unhealthy: answer %q, want us-east-1's %q", got, usAnswer)
	}
	if h, _ := srv.Healthy(checks["us-east-1"]); !h {
		t.Error("us-east-1 is not healthy")
	}

	us.failing.Store(true)
	waitFor(t, "us-east-1 unhealthy", 3*time.Second, func() bool { h, _ := srv.Healthy(checks["us-east-1"]); return !h })
	if got := answer(); got != euAnswer {
		t.Errorf("all unhealthy: answer %q, want the nearest as if all were healthy, %q", got, euAnswer)
	}

	eu.failing.Store(false)
	waitFor(t, "the answer back in eu-west-1 once it recovers", 3*time.Second, func() bool {
		h, _ := srv.Healthy(checks["eu-west-1"])
		return h && answer() == euAnswer
	})

	// Disabling a check stops its probes and makes it healthy.
	if _, err := c.UpdateHealthCheck(ctx, &route53.UpdateHealthCheckInput{HealthCheckId: aws.String(checks["us-east-1"]), Disabled: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if h, _ := srv.Healthy(checks["us-east-1"]); !h {
		t.Error("a disabled check is not healthy")
	}
	hits := us.hits.Load()
	time.Sleep(300 * time.Millisecond)
	if n := us.hits.Load() - hits; n > 1 {
		t.Errorf("a disabled check was probed %d times", n)
	}
}
