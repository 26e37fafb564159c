package route53test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// maxChase bounds how many aliases and CNAMEs one answer follows.
const maxChase = 8

// serveDNS answers a query for the served zones from their INSYNC records,
// as a Route53 name server would for a client in the query's region.
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	defer func() {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
		m.Truncate(size)
		_ = w.WriteMsg(m)
	}()
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeFormatError
		return
	}
	q := req.Question[0]
	qname := strings.ToLower(q.Name)

	s.mu.Lock()
	defer s.mu.Unlock()
	region := s.clientRegion
	if opt := req.IsEdns0(); opt != nil {
		respOpt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		respOpt.SetUDPSize(opt.UDPSize())
		for _, o := range opt.Option {
			ecs, ok := o.(*dns.EDNS0_SUBNET)
			if !ok {
				continue
			}
			if r, ok := s.subnetRegion(ecs.Address); ok {
				region = r
			}
			reply := *ecs
			reply.SourceScope = ecs.SourceNetmask
			respOpt.Option = append(respOpt.Option, &reply)
		}
		m.Extra = append(m.Extra, respOpt)
	}
	z := s.zoneFor(qname)
	if z == nil {
		m.Authoritative = false
		m.Rcode = dns.RcodeRefused
		return
	}
	r := resolver{s: s, region: region}
	answer, rcode := r.resolve(z, qname, qname, q.Qtype, 0)
	m.Answer = answer
	m.Rcode = rcode
	if len(answer) == 0 {
		if soa := z.soa(s); soa != nil {
			m.Ns = append(m.Ns, soa)
		}
	}
}

// subnetRegion maps a client address to a region; s.mu is held.
func (s *Server) subnetRegion(ip []byte) (string, bool) {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return "", false
	}
	addr = addr.Unmap()
	best, bestBits := "", -1
	for _, sr := range s.subnets {
		if sr.prefix.Contains(addr) && sr.prefix.Bits() > bestBits {
			best, bestBits = sr.region, sr.prefix.Bits()
		}
	}
	return best, bestBits >= 0
}

// zoneFor returns the most specific served zone that contains name; s.mu
// is held.
func (s *Server) zoneFor(name string) *zone {
	var best *zone
	for _, z := range s.zones {
		if dns.IsSubDomain(z.name, name) && (best == nil || len(z.name) > len(best.name)) {
			best = z
		}
	}
	return best
}

func (z *zone) soa(s *Server) dns.RR {
	for _, rr := range z.publishedLocked(s.now()) {
		if rr.Name == z.name && rr.Type == "SOA" {
			if out := rr.toRR(rr.Name); len(out) > 0 {
				return out[0]
			}
		}
	}
	return nil
}

// toRR converts the record set's values to DNS records named owner.
func (r *rrset) toRR(owner string) []dns.RR {
	var out []dns.RR
	for _, v := range r.values() {
		rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", owner, *r.TTL, r.Type, v))
		if err == nil && rr != nil {
			out = append(out, rr)
		}
	}
	return out
}

// resolver answers one query; the server's lock is held while it runs.
type resolver struct {
	s      *Server
	region string
}

// resolve answers name/qtype in z, naming the answer records owner (which
// differs from name when following an alias).
func (r resolver) resolve(z *zone, owner, name string, qtype uint16, depth int) ([]dns.RR, int) {
	if depth > maxChase {
		return nil, dns.RcodeServerFailure
	}
	records := z.publishedLocked(r.s.now())
	var atName []*rrset
	nameExists := false
	for _, rr := range records {
		if rr.Name == name {
			atName = append(atName, rr)
		}
		if dns.IsSubDomain(name, rr.Name) {
			nameExists = true // the name itself or an empty non-terminal above a record
		}
	}
	if !nameExists {
		return nil, dns.RcodeNameError
	}
	typ := dns.TypeToString[qtype]
	candidates := ofType(atName, typ)
	if len(candidates) == 0 && qtype != dns.TypeCNAME {
		candidates = ofType(atName, "CNAME")
	}
	var answer []dns.RR
	for _, rr := range r.choose(candidates, depth) {
		if rr.AliasTarget != nil {
			tz := r.targetZone(rr.AliasTarget)
			if tz == nil {
				continue // an alias to a resource this server does not serve
			}
			got, _ := r.resolve(tz, owner, rr.AliasTarget.DNSName, qtype, depth+1)
			answer = append(answer, got...)
			continue
		}
		answer = append(answer, rr.toRR(owner)...)
		if rr.Type == "CNAME" && qtype != dns.TypeCNAME {
			target := canonicalName(rr.values()[0])
			if tz := r.s.zoneFor(target); tz != nil {
				got, _ := r.resolve(tz, target, target, qtype, depth+1)
				answer = append(answer, got...)
			}
		}
	}
	return answer, dns.RcodeSuccess
}

func ofType(sets []*rrset, typ string) []*rrset {
	var out []*rrset
	for _, rr := range sets {
		if rr.Type == typ {
			out = append(out, rr)
		}
	}
	return out
}

// targetZone is the served zone an alias points into, or nil.
func (r resolver) targetZone(at *aliasTarget) *zone {
	if z, ok := r.s.zones[at.HostedZoneID]; ok && dns.IsSubDomain(z.name, at.DNSName) {
		return z
	}
	return r.s.zoneFor(at.DNSName)
}

// choose applies the routing policy of a name's record sets of one type.
// Unhealthy records are left out unless all are, in which case Route53
// answers as if all were healthy.
func (r resolver) choose(sets []*rrset, depth int) []*rrset {
	if len(sets) <= 1 {
		return sets
	}
	healthy := slices.DeleteFunc(slices.Clone(sets), func(rr *rrset) bool { return !r.healthy(rr, depth) })
	if len(healthy) == 0 {
		healthy = sets
	}
	switch healthy[0].policy() {
	case "latency":
		return []*rrset{slices.MinFunc(healthy, func(a, b *rrset) int {
			if c := cmp.Compare(regionDistance(r.region, a.Region), regionDistance(r.region, b.Region)); c != 0 {
				return c
			}
			return strings.Compare(a.SetIdentifier, b.SetIdentifier)
		})}
	case "weighted":
		total := int64(0)
		for _, rr := range healthy {
			total += *rr.Weight
		}
		if total == 0 {
			return []*rrset{healthy[rand.IntN(len(healthy))]}
		}
		n := rand.Int64N(total)
		for _, rr := range healthy {
			if n -= *rr.Weight; n < 0 {
				return []*rrset{rr}
			}
		}
	case "failover":
		slices.SortFunc(healthy, func(a, b *rrset) int { return strings.Compare(a.Failover, b.Failover) }) // PRIMARY < SECONDARY
		return healthy[:1]
	case "multivalue":
		return healthy[:min(len(healthy), 8)]
	}
	return healthy[:1]
}

// healthy reports whether a record may be answered: its health check, if
// any, is healthy, and an alias that evaluates target health points at a
// healthy record.
func (r resolver) healthy(rr *rrset, depth int) bool {
	if rr.HealthCheckID != "" {
		if hc, ok := r.s.checks[rr.HealthCheckID]; ok && !hc.healthy {
			return false
		}
	}
	at := rr.AliasTarget
	if at == nil || !at.EvaluateTargetHealth || depth > maxChase {
		return true
	}
	tz := r.targetZone(at)
	if tz == nil {
		return true
	}
	var targets []*rrset
	for _, t := range tz.publishedLocked(r.s.now()) {
		if t.Name == at.DNSName && t.Type == rr.Type {
			targets = append(targets, t)
		}
	}
	for _, t := range targets {
		if r.healthy(t, depth+1) {
			return true
		}
	}
	return len(targets) == 0
}

// LookupA asks the DNS server at addr (the test server's DNSAddr) for name's A
// records and returns them joined with commas: "" when there are none.
func LookupA(addr, name string) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	resp, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		return "", fmt.Errorf("DNS query %s: %w", name, err)
	}
	var out []string
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return strings.Join(out, ","), nil
}
