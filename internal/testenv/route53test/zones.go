package route53test

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// zone is a public hosted zone.
type zone struct {
	id        string // bare, e.g. Z00000000000000000001
	name      string // canonical, with the trailing dot
	callerRef string
	comment   string
	records   []*rrset // sorted by rrsetLess; an rrset is never changed in place
	tags      map[string]string
	// published is the record set the DNS server answers from: the records
	// as of the newest change that is INSYNC.
	published []*rrset
	pending   []*change // changes not yet INSYNC, oldest first
	// processing is set while a ChangeResourceRecordSets is being processed;
	// another change meanwhile is refused with PriorRequestNotComplete.
	processing bool
}

// change is one ChangeResourceRecordSets call.
type change struct {
	id        string
	comment   string
	submitted time.Time
	insync    time.Time
	snapshot  []*rrset
}

func (c *change) status(now time.Time) string {
	if now.Before(c.insync) {
		return "PENDING"
	}
	return "INSYNC"
}

// rrset is a resource record set in Route53's XML shape.
type rrset struct {
	Name             string           `xml:"Name"`
	Type             string           `xml:"Type"`
	SetIdentifier    string           `xml:"SetIdentifier,omitempty"`
	Weight           *int64           `xml:"Weight,omitempty"`
	Region           string           `xml:"Region,omitempty"`
	GeoLocation      *geoLocation     `xml:"GeoLocation,omitempty"`
	Failover         string           `xml:"Failover,omitempty"`
	MultiValueAnswer *bool            `xml:"MultiValueAnswer,omitempty"`
	TTL              *int64           `xml:"TTL,omitempty"`
	ResourceRecords  *resourceRecords `xml:"ResourceRecords,omitempty"`
	AliasTarget      *aliasTarget     `xml:"AliasTarget,omitempty"`
	HealthCheckID    string           `xml:"HealthCheckId,omitempty"`
}

type geoLocation struct {
	ContinentCode   string `xml:"ContinentCode,omitempty"`
	CountryCode     string `xml:"CountryCode,omitempty"`
	SubdivisionCode string `xml:"SubdivisionCode,omitempty"`
}

type resourceRecords struct {
	Values []string `xml:"ResourceRecord>Value"`
}

type aliasTarget struct {
	HostedZoneID         string `xml:"HostedZoneId"`
	DNSName              string `xml:"DNSName"`
	EvaluateTargetHealth bool   `xml:"EvaluateTargetHealth"`
}

func (r *rrset) values() []string {
	if r.ResourceRecords == nil {
		return nil
	}
	return r.ResourceRecords.Values
}

// policy names the routing policy of a record set with a SetIdentifier.
func (r *rrset) policy() string {
	switch {
	case r.SetIdentifier == "":
		return "simple"
	case r.Region != "":
		return "latency"
	case r.Weight != nil:
		return "weighted"
	case r.Failover != "":
		return "failover"
	case r.GeoLocation != nil:
		return "geolocation"
	case r.MultiValueAnswer != nil:
		return "multivalue"
	}
	return "unknown"
}

// describe is how Route53's messages name a record set.
func (r *rrset) describe() string {
	if r.SetIdentifier != "" {
		return fmt.Sprintf("[name='%s', type='%s', set-identifier='%s']", r.Name, r.Type, r.SetIdentifier)
	}
	return fmt.Sprintf("[name='%s', type='%s']", r.Name, r.Type)
}

func (r *rrset) sameKey(o *rrset) bool {
	return r.Name == o.Name && r.Type == o.Type && r.SetIdentifier == o.SetIdentifier
}

// equal reports whether two record sets match exactly, as DELETE requires.
func (r *rrset) equal(o *rrset) bool {
	a, _ := xml.Marshal(r)
	b, _ := xml.Marshal(o)
	return string(a) == string(b)
}

// reversedName is the sort key Route53 lists names by: labels reversed.
func reversedName(name string) string {
	labels := dns.SplitDomainName(name)
	slices.Reverse(labels)
	return strings.Join(labels, ".")
}

func rrsetCompare(a, b *rrset) int {
	if c := strings.Compare(reversedName(a.Name), reversedName(b.Name)); c != 0 {
		return c
	}
	if c := strings.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	return strings.Compare(a.SetIdentifier, b.SetIdentifier)
}

// canonicalName lowercases name and makes it fully qualified; Route53
// stores and returns names that way.
func canonicalName(name string) string {
	return dns.Fqdn(strings.ToLower(strings.TrimSpace(name)))
}

// CreateZone creates a public hosted zone with Route53's default SOA and NS
// records and returns its bare id (e.g. "Z00000000000000000001"). It does
// not count as a request.
func (s *Server) CreateZone(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createZone(canonicalName(name), "", "").id
}

// createZone adds a zone; s.mu is held.
func (s *Server) createZone(name, callerRef, comment string) *zone {
	s.seq++
	z := &zone{
		id:        fmt.Sprintf("Z%020d", s.seq),
		name:      name,
		callerRef: callerRef,
		comment:   comment,
		tags:      map[string]string{},
	}
	soaTTL, nsTTL := int64(900), int64(172800)
	z.records = []*rrset{
		{Name: name, Type: "NS", TTL: &nsTTL, ResourceRecords: &resourceRecords{Values: nameServers(s.seq)}},
		{Name: name, Type: "SOA", TTL: &soaTTL, ResourceRecords: &resourceRecords{Values: []string{
			nameServers(s.seq)[0] + " awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400",
		}}},
	}
	z.published = z.records
	s.zones[z.id] = z
	return z
}

func nameServers(n int) []string {
	return []string{
		fmt.Sprintf("ns-%d.awsdns-%02d.com.", n%2048, n%64),
		fmt.Sprintf("ns-%d.awsdns-%02d.net.", (n+512)%2048, (n+1)%64),
		fmt.Sprintf("ns-%d.awsdns-%02d.org.", (n+1024)%2048, (n+2)%64),
		fmt.Sprintf("ns-%d.awsdns-%02d.co.uk.", (n+1536)%2048, (n+3)%64),
	}
}

type hostedZoneXML struct {
	ID                     string `xml:"Id"`
	Name                   string `xml:"Name"`
	CallerReference        string `xml:"CallerReference"`
	Comment                string `xml:"Config>Comment,omitempty"`
	PrivateZone            bool   `xml:"Config>PrivateZone"`
	ResourceRecordSetCount int    `xml:"ResourceRecordSetCount"`
}

type delegationSetXML struct {
	NameServers []string `xml:"NameServers>NameServer"`
}

type changeInfoXML struct {
	ID          string `xml:"Id"`
	Status      string `xml:"Status"`
	SubmittedAt string `xml:"SubmittedAt"`
	Comment     string `xml:"Comment,omitempty"`
}

func (z *zone) xml() hostedZoneXML {
	return hostedZoneXML{ID: "/hostedzone/" + z.id, Name: z.name, CallerReference: z.callerRef, Comment: z.comment, ResourceRecordSetCount: len(z.records)}
}

func (z *zone) delegationSet() *delegationSetXML {
	for _, r := range z.records {
		if r.Name == z.name && r.Type == "NS" {
			return &delegationSetXML{NameServers: r.values()}
		}
	}
	return &delegationSetXML{}
}

func (c *change) xml(now time.Time) changeInfoXML {
	return changeInfoXML{ID: "/change/" + c.id, Status: c.status(now), SubmittedAt: timestamp(c.submitted), Comment: c.comment}
}

// zoneLocked returns the zone with id or NoSuchHostedZone; s.mu is held.
func (s *Server) zoneLocked(id string) (*zone, *apiError) {
	z, ok := s.zones[bareID(id)]
	if !ok {
		return nil, errorf(http.StatusNotFound, "NoSuchHostedZone", "No hosted zone found with ID: %s", bareID(id))
	}
	return z, nil
}

func (s *Server) createHostedZone(r *http.Request, body []byte) (int, any, *apiError) {
	var req struct {
		Name            string `xml:"Name"`
		CallerReference string `xml:"CallerReference"`
		Comment         string `xml:"HostedZoneConfig>Comment"`
		PrivateZone     bool   `xml:"HostedZoneConfig>PrivateZone"`
		VPCID           string `xml:"VPC>VPCId"`
	}
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	if req.PrivateZone || req.VPCID != "" {
		return 0, nil, invalidInput("private hosted zones are not supported by this test server")
	}
	name := canonicalName(req.Name)
	if _, ok := dns.IsDomainName(name); !ok || strings.Count(name, ".") < 2 {
		return 0, nil, errorf(http.StatusBadRequest, "InvalidDomainName", "%s is reserved by AWS or is not a valid domain name", req.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, z := range s.zones {
		if z.callerRef != "" && z.callerRef == req.CallerReference {
			return 0, nil, errorf(http.StatusConflict, "HostedZoneAlreadyExists", "A hosted zone has already been created with the specified caller reference.")
		}
	}
	z := s.createZone(name, req.CallerReference, req.Comment)
	c := s.newChange("", nil)
	return http.StatusCreated, struct {
		XMLName       xml.Name          `xml:"https://route53.amazonaws.com/doc/2013-04-01/ CreateHostedZoneResponse"`
		HostedZone    hostedZoneXML     `xml:"HostedZone"`
		ChangeInfo    changeInfoXML     `xml:"ChangeInfo"`
		DelegationSet *delegationSetXML `xml:"DelegationSet"`
	}{HostedZone: z.xml(), ChangeInfo: c.xml(s.now()), DelegationSet: z.delegationSet()}, nil
}

func (s *Server) getHostedZone(r *http.Request, _ []byte) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z, err := s.zoneLocked(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return 0, struct {
		XMLName       xml.Name          `xml:"https://route53.amazonaws.com/doc/2013-04-01/ GetHostedZoneResponse"`
		HostedZone    hostedZoneXML     `xml:"HostedZone"`
		DelegationSet *delegationSetXML `xml:"DelegationSet"`
	}{HostedZone: z.xml(), DelegationSet: z.delegationSet()}, nil
}

// maxItems parses the maxitems query parameter.
func maxItems(r *http.Request, def, limit int) (int, *apiError) {
	v := r.URL.Query().Get("maxitems")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, invalidInput("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must be a positive integer", v)
	}
	return min(n, limit), nil
}

// sortedZones returns the zones by reversed name, then id; s.mu is held.
func (s *Server) sortedZones() []*zone {
	var zs []*zone
	for _, z := range s.zones {
		zs = append(zs, z)
	}
	slices.SortFunc(zs, func(a, b *zone) int {
		if c := strings.Compare(reversedName(a.name), reversedName(b.name)); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return zs
}

func (s *Server) listHostedZones(r *http.Request, _ []byte) (int, any, *apiError) {
	n, err := maxItems(r, 100, 100)
	if err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	zs := s.sortedZones()
	marker := r.URL.Query().Get("marker")
	start := 0
	if marker != "" {
		start = slices.IndexFunc(zs, func(z *zone) bool { return z.id == bareID(marker) })
		if start < 0 {
			return 0, nil, invalidInput("Invalid marker: %s", marker)
		}
	}
	resp := struct {
		XMLName     xml.Name        `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListHostedZonesResponse"`
		HostedZones []hostedZoneXML `xml:"HostedZones>HostedZone"`
		Marker      string          `xml:"Marker"`
		IsTruncated bool            `xml:"IsTruncated"`
		NextMarker  string          `xml:"NextMarker,omitempty"`
		MaxItems    int             `xml:"MaxItems"`
	}{Marker: marker, MaxItems: n}
	for i := start; i < len(zs); i++ {
		if len(resp.HostedZones) == n {
			resp.IsTruncated, resp.NextMarker = true, zs[i].id
			break
		}
		resp.HostedZones = append(resp.HostedZones, zs[i].xml())
	}
	return 0, resp, nil
}

func (s *Server) listHostedZonesByName(r *http.Request, _ []byte) (int, any, *apiError) {
	n, err := maxItems(r, 100, 100)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	dnsName, zoneID := q.Get("dnsname"), bareID(q.Get("hostedzoneid"))
	if zoneID != "" && dnsName == "" {
		return 0, nil, invalidInput("If you specify HostedZoneId, you must also specify DNSName.")
	}
	if dnsName != "" {
		if _, ok := dns.IsDomainName(dnsName); !ok {
			return 0, nil, errorf(http.StatusBadRequest, "InvalidDomainName", "%s is not a valid domain name", dnsName)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := struct {
		XMLName          xml.Name        `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListHostedZonesByNameResponse"`
		HostedZones      []hostedZoneXML `xml:"HostedZones>HostedZone"`
		DNSName          string          `xml:"DNSName,omitempty"`
		HostedZoneID     string          `xml:"HostedZoneId,omitempty"`
		IsTruncated      bool            `xml:"IsTruncated"`
		NextDNSName      string          `xml:"NextDNSName,omitempty"`
		NextHostedZoneID string          `xml:"NextHostedZoneId,omitempty"`
		MaxItems         int             `xml:"MaxItems"`
	}{DNSName: dnsName, HostedZoneID: zoneID, MaxItems: n}
	startKey := reversedName(canonicalName(dnsName))
	for _, z := range s.sortedZones() {
		if dnsName != "" {
			c := strings.Compare(reversedName(z.name), startKey)
			if c < 0 || (c == 0 && zoneID != "" && z.id < zoneID) {
				continue
			}
		}
		if len(resp.HostedZones) == n {
			resp.IsTruncated, resp.NextDNSName, resp.NextHostedZoneID = true, z.name, z.id
			break
		}
		resp.HostedZones = append(resp.HostedZones, z.xml())
	}
	return 0, resp, nil
}

var recordTypes = []string{"A", "AAAA", "CAA", "CNAME", "DS", "HTTPS", "MX", "NAPTR", "NS", "PTR", "SOA", "SPF", "SRV", "SSHFP", "SVCB", "TLSA", "TXT"}

func (s *Server) listResourceRecordSets(r *http.Request, _ []byte) (int, any, *apiError) {
	n, err := maxItems(r, 300, 300)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	name, typ, ident := q.Get("name"), q.Get("type"), q.Get("identifier")
	if typ != "" && name == "" {
		return 0, nil, invalidInput("The input is not valid: if you specify type, you must also specify name.")
	}
	if ident != "" && typ == "" {
		return 0, nil, invalidInput("The input is not valid: if you specify identifier, you must also specify name and type.")
	}
	if typ != "" && !slices.Contains(recordTypes, typ) {
		return 0, nil, invalidInput("Invalid type: %s", typ)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	z, err := s.zoneLocked(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	resp := struct {
		XMLName              xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListResourceRecordSetsResponse"`
		ResourceRecordSets   []*rrset `xml:"ResourceRecordSets>ResourceRecordSet"`
		IsTruncated          bool     `xml:"IsTruncated"`
		NextRecordName       string   `xml:"NextRecordName,omitempty"`
		NextRecordType       string   `xml:"NextRecordType,omitempty"`
		NextRecordIdentifier string   `xml:"NextRecordIdentifier,omitempty"`
		MaxItems             int      `xml:"MaxItems"`
	}{MaxItems: n}
	start := &rrset{Name: canonicalName(name), Type: typ, SetIdentifier: ident}
	for _, rr := range z.records {
		if name != "" {
			c := strings.Compare(reversedName(rr.Name), reversedName(start.Name))
			if c < 0 || (c == 0 && typ != "" && rrsetCompare(rr, start) < 0) {
				continue
			}
		}
		if len(resp.ResourceRecordSets) == n {
			resp.IsTruncated, resp.NextRecordName, resp.NextRecordType, resp.NextRecordIdentifier = true, rr.Name, rr.Type, rr.SetIdentifier
			break
		}
		resp.ResourceRecordSets = append(resp.ResourceRecordSets, rr)
	}
	return 0, resp, nil
}

// Route53's per-request limits of ChangeResourceRecordSets; UPSERT counts
// twice.
const (
	maxBatchRecords = 1000
	maxBatchChars   = 32000
)

type changeBatchRequest struct {
	Comment string `xml:"ChangeBatch>Comment"`
	Changes []struct {
		Action string `xml:"Action"`
		RRSet  rrset  `xml:"ResourceRecordSet"`
	} `xml:"ChangeBatch>Changes>Change"`
}

func (s *Server) changeResourceRecordSets(r *http.Request, body []byte) (int, any, *apiError) {
	var req changeBatchRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	if len(req.Changes) == 0 {
		return 0, nil, invalidInput("1 validation error detected: Value '[]' at 'changeBatch.changes' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	records, chars := 0, 0
	for _, c := range req.Changes {
		weight := 1
		if c.Action == "UPSERT" {
			weight = 2
		}
		records += weight * len(c.RRSet.values())
		for _, v := range c.RRSet.values() {
			chars += weight * len(v)
		}
	}
	if records > maxBatchRecords {
		return 0, nil, batchError(fmt.Sprintf("Number of records limit of %d exceeded.", maxBatchRecords))
	}
	if chars > maxBatchChars {
		return 0, nil, batchError(fmt.Sprintf("Number of characters limit of %d exceeded.", maxBatchChars))
	}

	// The zone processes one change at a time, for ChangeProcessing; a change
	// that arrives meanwhile is refused, as Route53 does.
	s.mu.Lock()
	z, err := s.zoneLocked(r.PathValue("id"))
	if err != nil {
		s.mu.Unlock()
		return 0, nil, err
	}
	if z.processing {
		s.mu.Unlock()
		return 0, nil, priorRequestNotComplete()
	}
	z.processing = true
	s.mu.Unlock()
	time.Sleep(s.limits.ChangeProcessing)
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { z.processing = false }()
	next := slices.Clone(z.records)
	var msgs []string
	for i := range req.Changes {
		c := &req.Changes[i]
		rr := c.RRSet
		rr.Name = canonicalName(rr.Name)
		if rr.AliasTarget != nil {
			rr.AliasTarget.DNSName = canonicalName(rr.AliasTarget.DNSName)
			rr.AliasTarget.HostedZoneID = bareID(rr.AliasTarget.HostedZoneID)
		}
		if err := s.validateRRSet(z, c.Action, &rr); err != nil {
			return 0, nil, err
		}
		idx := slices.IndexFunc(next, rr.sameKey)
		switch c.Action {
		case "CREATE":
			if idx >= 0 {
				msgs = append(msgs, fmt.Sprintf("Tried to create resource record set %s but it already exists", rr.describe()))
				continue
			}
		case "DELETE":
			switch {
			case idx < 0:
				msgs = append(msgs, fmt.Sprintf("Tried to delete resource record set %s but it was not found", rr.describe()))
			case !next[idx].equal(&rr):
				msgs = append(msgs, fmt.Sprintf("Tried to delete resource record set %s but the values provided do not match the current values", rr.describe()))
			case rr.Name == z.name && (rr.Type == "SOA" || rr.Type == "NS"):
				msgs = append(msgs, fmt.Sprintf("A HostedZone must contain at least one %s record for the zone itself.", rr.Type))
			default:
				next = slices.Delete(next, idx, idx+1)
			}
			continue
		case "UPSERT":
		default:
			return 0, nil, invalidInput("Invalid XML ; Value '%s' at 'changeBatch.changes.%d.member.action' failed to satisfy constraint: Member must satisfy enum value set: [CREATE, DELETE, UPSERT]", c.Action, i+1)
		}
		if msg := conflict(z, next, &rr); msg != "" {
			msgs = append(msgs, msg)
			continue
		}
		if idx >= 0 {
			next[idx] = &rr
		} else {
			next = append(next, &rr)
			slices.SortFunc(next, rrsetCompare)
		}
	}
	// Alias targets in the zone itself must exist once the batch is applied.
	for i := range req.Changes {
		c := &req.Changes[i]
		at := c.RRSet.AliasTarget
		if c.Action == "DELETE" || at == nil || at.HostedZoneID != z.id {
			continue
		}
		if !slices.ContainsFunc(next, func(o *rrset) bool { return o.Name == at.DNSName && o.Type == c.RRSet.Type }) {
			msgs = append(msgs, fmt.Sprintf("Tried to create an alias that targets %s, type %s in zone %s, but the alias target name does not lie within the target zone", at.DNSName, c.RRSet.Type, z.id))
		}
	}
	if len(next) > len(z.records) && len(next) > s.limits.MaxRecordSetsPerZone {
		msgs = append(msgs, recordSetLimit(s.limits.MaxRecordSetsPerZone))
	}
	if len(msgs) > 0 {
		return 0, nil, &apiError{status: http.StatusBadRequest, code: "InvalidChangeBatch", message: strings.Join(msgs, "; "), messages: msgs}
	}
	z.records = next
	ch := s.newChange(req.Comment, next)
	z.pending = append(z.pending, ch)
	return 0, struct {
		XMLName    xml.Name      `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ChangeResourceRecordSetsResponse"`
		ChangeInfo changeInfoXML `xml:"ChangeInfo"`
	}{ChangeInfo: ch.xml(s.now())}, nil
}

func batchError(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "InvalidChangeBatch", message: msg, messages: []string{msg}}
}

// newChange records a change submitted now; s.mu is held.
func (s *Server) newChange(comment string, snapshot []*rrset) *change {
	s.seq++
	now := s.now()
	c := &change{id: fmt.Sprintf("C%020d", s.seq), comment: comment, submitted: now, insync: now.Add(s.opts.SyncDelay), snapshot: snapshot}
	s.changes[c.id] = c
	return c
}

// validateRRSet checks one record set on its own, as Route53's input
// validation does.
func (s *Server) validateRRSet(z *zone, action string, rr *rrset) *apiError {
	if _, ok := dns.IsDomainName(rr.Name); !ok {
		return invalidInput("Invalid request: %s is not a valid DNS name", rr.Name)
	}
	if !dns.IsSubDomain(z.name, rr.Name) {
		return batchError(fmt.Sprintf("RRSet with DNS name %s is not permitted in zone %s", rr.Name, z.name))
	}
	if !slices.Contains(recordTypes, rr.Type) {
		return invalidInput("Invalid XML ; Value '%s' at 'changeBatch.changes.member.resourceRecordSet.type' failed to satisfy constraint: Member must satisfy enum value set: %v", rr.Type, recordTypes)
	}
	hasRecords := rr.TTL != nil || len(rr.values()) > 0
	if (rr.AliasTarget == nil) == !hasRecords || (hasRecords && (rr.TTL == nil || len(rr.values()) == 0)) {
		return invalidInput("Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found none or more than one in Change with [Action=%s, Name=%s, Type=%s, SetIdentifier=%s]", action, rr.Name, rr.Type, orNull(rr.SetIdentifier))
	}
	if rr.SetIdentifier != "" && rr.policy() == "unknown" {
		return invalidInput("Invalid request: Missing field 'Weight', 'Region', 'Failover', 'GeoLocation' or 'MultiValueAnswer' in Change with [Action=%s, Name=%s, Type=%s, SetIdentifier=%s]", action, rr.Name, rr.Type, rr.SetIdentifier)
	}
	if rr.SetIdentifier == "" && (rr.Region != "" || rr.Weight != nil || rr.Failover != "" || rr.GeoLocation != nil || rr.MultiValueAnswer != nil) {
		return invalidInput("Invalid request: Missing field 'SetIdentifier' in Change with [Action=%s, Name=%s, Type=%s, SetIdentifier=null]", action, rr.Name, rr.Type)
	}
	if rr.Region != "" && !knownRegion(rr.Region) {
		return invalidInput("Invalid XML ; Value '%s' at 'region' failed to satisfy constraint: Member must be a known AWS region", rr.Region)
	}
	for _, v := range rr.values() {
		if _, err := dns.NewRR(fmt.Sprintf("%s 60 IN %s %s", rr.Name, rr.Type, v)); err != nil {
			return batchError(fmt.Sprintf("Invalid Resource Record: FATAL problem: bad %s value %q encountered", rr.Type, v))
		}
	}
	if rr.HealthCheckID != "" && action != "DELETE" {
		if _, ok := s.checks[rr.HealthCheckID]; !ok {
			return errorf(http.StatusNotFound, "NoSuchHealthCheck", "No health check exists with the specified ID %s", rr.HealthCheckID)
		}
	}
	return nil
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// conflict checks rr against the other record sets of the zone, with rr
// about to be added or to replace the one with its key.
func conflict(z *zone, records []*rrset, rr *rrset) string {
	for _, o := range records {
		if o.Name != rr.Name || o.sameKey(rr) {
			continue
		}
		if (o.Type == "CNAME") != (rr.Type == "CNAME") && rr.Name != z.name {
			return fmt.Sprintf("RRSet of type %s with DNS name %s is not permitted because a conflicting RRSet of type %s with the same DNS name already exists in zone %s.", rr.Type, rr.Name, o.Type, z.name)
		}
		if o.Type != rr.Type {
			continue
		}
		if (o.SetIdentifier == "") != (rr.SetIdentifier == "") {
			return fmt.Sprintf("RRSet with DNS name %s, type %s cannot be created because a non-%s RRSet with the same name and type already exists.", rr.Name, rr.Type, rr.policy())
		}
		if o.policy() != rr.policy() {
			return fmt.Sprintf("RRSet with DNS name %s, type %s, SetIdentifier %s cannot be created because a non-%s RRSet with the same name and type already exists.", rr.Name, rr.Type, rr.SetIdentifier, rr.policy())
		}
		if rr.policy() == "latency" && o.Region == rr.Region {
			return fmt.Sprintf("RRSet with DNS name %s, type %s, SetIdentifier %s cannot be created because another latency RRSet with the same name and type already exists in region %s.", rr.Name, rr.Type, rr.SetIdentifier, rr.Region)
		}
	}
	return ""
}

func (s *Server) getChange(r *http.Request, _ []byte) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.changes[bareID(r.PathValue("id"))]
	if !ok {
		return 0, nil, errorf(http.StatusNotFound, "NoSuchChange", "A change with the specified change ID does not exist: %s", bareID(r.PathValue("id")))
	}
	return 0, struct {
		XMLName    xml.Name      `xml:"https://route53.amazonaws.com/doc/2013-04-01/ GetChangeResponse"`
		ChangeInfo changeInfoXML `xml:"ChangeInfo"`
	}{ChangeInfo: c.xml(s.now())}, nil
}

// publishedLocked returns the records the DNS server answers from: those
// of the newest change that is INSYNC; s.mu is held.
func (z *zone) publishedLocked(now time.Time) []*rrset {
	for len(z.pending) > 0 && !now.Before(z.pending[0].insync) {
		z.published = z.pending[0].snapshot
		z.pending = z.pending[1:]
	}
	return z.published
}
