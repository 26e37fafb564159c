package route53test

import (
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// healthCheckConfig is a health check's configuration in Route53's XML
// shape.
type healthCheckConfig struct {
	IPAddress                string   `xml:"IPAddress,omitempty"`
	Port                     *int32   `xml:"Port,omitempty"`
	Type                     string   `xml:"Type"`
	ResourcePath             string   `xml:"ResourcePath,omitempty"`
	FullyQualifiedDomainName string   `xml:"FullyQualifiedDomainName,omitempty"`
	SearchString             string   `xml:"SearchString,omitempty"`
	RequestInterval          *int32   `xml:"RequestInterval,omitempty"`
	FailureThreshold         *int32   `xml:"FailureThreshold,omitempty"`
	MeasureLatency           *bool    `xml:"MeasureLatency,omitempty"`
	Inverted                 *bool    `xml:"Inverted,omitempty"`
	Disabled                 *bool    `xml:"Disabled,omitempty"`
	EnableSNI                *bool    `xml:"EnableSNI,omitempty"`
	Regions                  []string `xml:"Regions>Region,omitempty"`
}

// healthCheck is one health check and its prober's view of its target.
type healthCheck struct {
	id        string
	callerRef string
	version   int64
	config    healthCheckConfig
	tags      map[string]string

	healthy   bool
	streak    int // consecutive results that disagree with healthy
	report    string
	checkedAt time.Time
	stop      chan struct{}
}

func (hc *healthCheck) stopProbe() {
	if hc.stop != nil {
		close(hc.stop)
		hc.stop = nil
	}
}

type healthCheckXML struct {
	ID                 string            `xml:"Id"`
	CallerReference    string            `xml:"CallerReference"`
	HealthCheckConfig  healthCheckConfig `xml:"HealthCheckConfig"`
	HealthCheckVersion int64             `xml:"HealthCheckVersion"`
}

func (hc *healthCheck) xml() healthCheckXML {
	return healthCheckXML{ID: hc.id, CallerReference: hc.callerRef, HealthCheckConfig: hc.config, HealthCheckVersion: hc.version}
}

var probeTypes = []string{"HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP"}

// defaultCheckerRegions are the regions Route53 checks from when a health
// check names none.
var defaultCheckerRegions = []string{"us-east-1", "us-west-1", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1"}

// normalize fills in Route53's defaults and validates the configuration.
func (c *healthCheckConfig) normalize() *apiError {
	if !slices.Contains(probeTypes, c.Type) {
		return invalidInput("Invalid health check type %q: this test server probes %v", c.Type, probeTypes)
	}
	if c.IPAddress == "" && c.FullyQualifiedDomainName == "" {
		return invalidInput("Invalid parameter: you must specify either IPAddress or FullyQualifiedDomainName.")
	}
	if c.IPAddress != "" && net.ParseIP(c.IPAddress) == nil {
		return invalidInput("Invalid IP address: %s", c.IPAddress)
	}
	if c.Port == nil {
		p := int32(80)
		if c.Type == "HTTPS" || c.Type == "HTTPS_STR_MATCH" {
			p = 443
		}
		c.Port = &p
	}
	if *c.Port < 1 || *c.Port > 65535 {
		return invalidInput("Invalid port: %d", *c.Port)
	}
	if c.RequestInterval == nil {
		v := int32(30)
		c.RequestInterval = &v
	}
	if *c.RequestInterval != 10 && *c.RequestInterval != 30 {
		return invalidInput("Invalid parameter : RequestInterval must be 10 or 30, got %d", *c.RequestInterval)
	}
	if c.FailureThreshold == nil {
		v := int32(3)
		c.FailureThreshold = &v
	}
	if *c.FailureThreshold < 1 || *c.FailureThreshold > 10 {
		return invalidInput("Invalid parameter : FailureThreshold must be between 1 and 10, got %d", *c.FailureThreshold)
	}
	if len(c.ResourcePath) > 255 {
		return invalidInput("Invalid parameter : ResourcePath is longer than 255 characters")
	}
	if c.ResourcePath != "" && c.ResourcePath[0] != '/' {
		c.ResourcePath = "/" + c.ResourcePath
	}
	f := false
	for _, p := range []**bool{&c.MeasureLatency, &c.Inverted, &c.Disabled} {
		if *p == nil {
			*p = &f
		}
	}
	if c.EnableSNI == nil {
		v := c.Type == "HTTPS" || c.Type == "HTTPS_STR_MATCH"
		c.EnableSNI = &v
	}
	if len(c.Regions) == 0 {
		c.Regions = slices.Clone(defaultCheckerRegions)
	}
	if len(c.Regions) < 3 {
		return invalidInput("Invalid parameter : at least 3 checker regions are required")
	}
	return nil
}

func configsEqual(a, b healthCheckConfig) bool {
	x, _ := xml.Marshal(a)
	y, _ := xml.Marshal(b)
	return string(x) == string(y)
}

// checkLocked returns the health check with id or NoSuchHealthCheck; s.mu
// is held.
func (s *Server) checkLocked(id string) (*healthCheck, *apiError) {
	hc, ok := s.checks[id]
	if !ok {
		return nil, errorf(http.StatusNotFound, "NoSuchHealthCheck", "No health check exists with the specified ID %s", id)
	}
	return hc, nil
}

func (s *Server) createHealthCheck(r *http.Request, body []byte) (int, any, *apiError) {
	var req struct {
		CallerReference   string            `xml:"CallerReference"`
		HealthCheckConfig healthCheckConfig `xml:"HealthCheckConfig"`
	}
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	if req.CallerReference == "" || len(req.CallerReference) > 64 {
		return 0, nil, invalidInput("1 validation error detected: Value at 'callerReference' failed to satisfy constraint: Member must have length between 1 and 64")
	}
	cfg := req.HealthCheckConfig
	if err := cfg.normalize(); err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deletedRefs[req.CallerReference] {
		return 0, nil, errorf(http.StatusConflict, "HealthCheckAlreadyExists", "A health check with the CallerReference %s was deleted; use another CallerReference.", req.CallerReference)
	}
	for _, id := range s.checkOrder {
		hc := s.checks[id]
		if hc.callerRef != req.CallerReference {
			continue
		}
		if !configsEqual(hc.config, cfg) {
			return 0, nil, errorf(http.StatusConflict, "HealthCheckAlreadyExists", "A health check with the CallerReference %s already exists with a different configuration.", req.CallerReference)
		}
		return http.StatusCreated, createHealthCheckResponse{HealthCheck: hc.xml()}, nil
	}
	if len(s.checks) >= s.limits.MaxHealthChecks {
		return 0, nil, tooManyHealthChecks(s.limits.MaxHealthChecks)
	}
	s.seq++
	hc := &healthCheck{
		id:        fmt.Sprintf("00000000-0000-4000-8000-%012d", s.seq),
		callerRef: req.CallerReference,
		version:   1,
		config:    cfg,
		tags:      map[string]string{},
		healthy:   true, // Route53 takes a new check as healthy until it has data
		report:    "Success: no data yet",
	}
	s.checks[hc.id] = hc
	s.checkOrder = append(s.checkOrder, hc.id)
	s.startProbe(hc)
	return http.StatusCreated, createHealthCheckResponse{HealthCheck: hc.xml()}, nil
}

type createHealthCheckResponse struct {
	XMLName     xml.Name       `xml:"https://route53.amazonaws.com/doc/2013-04-01/ CreateHealthCheckResponse"`
	HealthCheck healthCheckXML `xml:"HealthCheck"`
}

func (s *Server) getHealthCheck(r *http.Request, _ []byte) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hc, err := s.checkLocked(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return 0, struct {
		XMLName     xml.Name       `xml:"https://route53.amazonaws.com/doc/2013-04-01/ GetHealthCheckResponse"`
		HealthCheck healthCheckXML `xml:"HealthCheck"`
	}{HealthCheck: hc.xml()}, nil
}

func (s *Server) updateHealthCheck(r *http.Request, body []byte) (int, any, *apiError) {
	var req struct {
		HealthCheckVersion       *int64   `xml:"HealthCheckVersion"`
		IPAddress                *string  `xml:"IPAddress"`
		Port                     *int32   `xml:"Port"`
		ResourcePath             *string  `xml:"ResourcePath"`
		FullyQualifiedDomainName *string  `xml:"FullyQualifiedDomainName"`
		SearchString             *string  `xml:"SearchString"`
		FailureThreshold         *int32   `xml:"FailureThreshold"`
		Inverted                 *bool    `xml:"Inverted"`
		Disabled                 *bool    `xml:"Disabled"`
		EnableSNI                *bool    `xml:"EnableSNI"`
		Regions                  []string `xml:"Regions>Region"`
		ResetElements            []string `xml:"ResetElements>ResettableElementName"`
	}
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	hc, err := s.checkLocked(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if req.HealthCheckVersion != nil && *req.HealthCheckVersion != hc.version {
		return 0, nil, errorf(http.StatusConflict, "HealthCheckVersionMismatch", "The value of HealthCheckVersion in the request (%d) doesn't match the current version %d of the health check.", *req.HealthCheckVersion, hc.version)
	}
	cfg := hc.config
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&cfg.IPAddress, req.IPAddress)
	set(&cfg.ResourcePath, req.ResourcePath)
	set(&cfg.FullyQualifiedDomainName, req.FullyQualifiedDomainName)
	set(&cfg.SearchString, req.SearchString)
	if req.Port != nil {
		cfg.Port = req.Port
	}
	if req.FailureThreshold != nil {
		cfg.FailureThreshold = req.FailureThreshold
	}
	if req.Inverted != nil {
		cfg.Inverted = req.Inverted
	}
	if req.Disabled != nil {
		cfg.Disabled = req.Disabled
	}
	if req.EnableSNI != nil {
		cfg.EnableSNI = req.EnableSNI
	}
	if req.Regions != nil {
		cfg.Regions = req.Regions
	}
	for _, e := range req.ResetElements {
		switch e {
		case "ResourcePath":
			cfg.ResourcePath = ""
		case "FullyQualifiedDomainName":
			cfg.FullyQualifiedDomainName = ""
		case "Regions":
			cfg.Regions = nil
		}
	}
	if err := cfg.normalize(); err != nil {
		return 0, nil, err
	}
	if !configsEqual(cfg, hc.config) {
		hc.config = cfg
		hc.version++
		hc.stopProbe()
		hc.streak = 0
		s.startProbe(hc)
	}
	return 0, struct {
		XMLName     xml.Name       `xml:"https://route53.amazonaws.com/doc/2013-04-01/ UpdateHealthCheckResponse"`
		HealthCheck healthCheckXML `xml:"HealthCheck"`
	}{HealthCheck: hc.xml()}, nil
}

func (s *Server) deleteHealthCheck(r *http.Request, _ []byte) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hc, err := s.checkLocked(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	for _, z := range s.zones {
		for _, rr := range z.records {
			if rr.HealthCheckID == hc.id {
				return 0, nil, errorf(http.StatusBadRequest, "HealthCheckInUse", "Health check %s is still referenced from parent health check(s) or record(s) (%s in zone %s).", hc.id, rr.describe(), z.id)
			}
		}
	}
	hc.stopProbe()
	delete(s.checks, hc.id)
	s.checkOrder = slices.DeleteFunc(s.checkOrder, func(id string) bool { return id == hc.id })
	s.deletedRefs[hc.callerRef] = true
	return 0, struct {
		XMLName xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ DeleteHealthCheckResponse"`
	}{}, nil
}

func (s *Server) listHealthChecks(r *http.Request, _ []byte) (int, any, *apiError) {
	n, err := maxItems(r, 100, 1000)
	if err != nil {
		return 0, nil, err
	}
	marker := r.URL.Query().Get("marker")
	s.mu.Lock()
	defer s.mu.Unlock()
	start := 0
	if marker != "" {
		start = slices.Index(s.checkOrder, marker)
		if start < 0 {
			return 0, nil, invalidInput("Invalid marker: %s", marker)
		}
	}
	resp := struct {
		XMLName      xml.Name         `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListHealthChecksResponse"`
		HealthChecks []healthCheckXML `xml:"HealthChecks>HealthCheck"`
		Marker       string           `xml:"Marker"`
		IsTruncated  bool             `xml:"IsTruncated"`
		NextMarker   string           `xml:"NextMarker,omitempty"`
		MaxItems     int              `xml:"MaxItems"`
	}{Marker: marker, MaxItems: n}
	for _, id := range s.checkOrder[start:] {
		if len(resp.HealthChecks) == n {
			resp.IsTruncated, resp.NextMarker = true, id
			break
		}
		resp.HealthChecks = append(resp.HealthChecks, s.checks[id].xml())
	}
	return 0, resp, nil
}

func (s *Server) getHealthCheckStatus(r *http.Request, _ []byte) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hc, err := s.checkLocked(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	type observation struct {
		Region      string `xml:"Region"`
		IPAddress   string `xml:"IPAddress"`
		Status      string `xml:"StatusReport>Status"`
		CheckedTime string `xml:"StatusReport>CheckedTime"`
	}
	resp := struct {
		XMLName      xml.Name      `xml:"https://route53.amazonaws.com/doc/2013-04-01/ GetHealthCheckStatusResponse"`
		Observations []observation `xml:"HealthCheckObservations>HealthCheckObservation"`
	}{}
	checked := hc.checkedAt
	if checked.IsZero() {
		checked = s.now()
	}
	for i, region := range hc.config.Regions {
		resp.Observations = append(resp.Observations, observation{
			Region:      region,
			IPAddress:   "127.0.0." + strconv.Itoa(10+i),
			Status:      hc.statusText(),
			CheckedTime: timestamp(checked),
		})
	}
	return 0, resp, nil
}

// statusText is the checkers' report: the last probe's result, prefixed
// with the check's state as Route53 decided it.
func (hc *healthCheck) statusText() string {
	if hc.healthy {
		return "Success: " + hc.report
	}
	return "Failure: " + hc.report
}

// Healthy reports Route53's view of a health check: whether it is healthy
// now, and whether it exists.
func (s *Server) Healthy(id string) (healthy, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hc, ok := s.checks[id]
	if !ok {
		return false, false
	}
	return hc.healthy, true
}

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type resourceTagSetXML struct {
	ResourceType string   `xml:"ResourceType"`
	ResourceID   string   `xml:"ResourceId"`
	Tags         []tagXML `xml:"Tags>Tag"`
}

// tagsLocked returns the tags of a resource; s.mu is held.
func (s *Server) tagsLocked(typ, id string) (map[string]string, *apiError) {
	switch typ {
	case "healthcheck":
		hc, err := s.checkLocked(id)
		if err != nil {
			return nil, err
		}
		return hc.tags, nil
	case "hostedzone":
		z, err := s.zoneLocked(id)
		if err != nil {
			return nil, err
		}
		return z.tags, nil
	}
	return nil, invalidInput("Invalid resource type %q: use healthcheck or hostedzone", typ)
}

func tagSet(typ, id string, tags map[string]string) resourceTagSetXML {
	set := resourceTagSetXML{ResourceType: typ, ResourceID: id}
	for k, v := range tags {
		set.Tags = append(set.Tags, tagXML{Key: k, Value: v})
	}
	slices.SortFunc(set.Tags, func(a, b tagXML) int {
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	return set
}

// maxTags is Route53's limit of tags per resource.
const maxTags = 50

func (s *Server) changeTagsForResource(r *http.Request, body []byte) (int, any, *apiError) {
	var req struct {
		AddTags       []tagXML `xml:"AddTags>Tag"`
		RemoveTagKeys []string `xml:"RemoveTagKeys>Key"`
	}
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tags, err := s.tagsLocked(r.PathValue("type"), bareID(r.PathValue("id")))
	if err != nil {
		return 0, nil, err
	}
	next := map[string]string{}
	for k, v := range tags {
		next[k] = v
	}
	for _, t := range req.AddTags {
		next[t.Key] = t.Value
	}
	for _, k := range req.RemoveTagKeys {
		delete(next, k)
	}
	if len(next) > maxTags {
		return 0, nil, invalidInput("Number of tags %d exceeds the limit of %d per resource", len(next), maxTags)
	}
	clear(tags)
	for k, v := range next {
		tags[k] = v
	}
	return 0, struct {
		XMLName xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ChangeTagsForResourceResponse"`
	}{}, nil
}

func (s *Server) listTagsForResource(r *http.Request, _ []byte) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	typ, id := r.PathValue("type"), bareID(r.PathValue("id"))
	tags, err := s.tagsLocked(typ, id)
	if err != nil {
		return 0, nil, err
	}
	return 0, struct {
		XMLName        xml.Name          `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListTagsForResourceResponse"`
		ResourceTagSet resourceTagSetXML `xml:"ResourceTagSet"`
	}{ResourceTagSet: tagSet(typ, id, tags)}, nil
}

func (s *Server) listTagsForResources(r *http.Request, body []byte) (int, any, *apiError) {
	var req struct {
		ResourceIDs []string `xml:"ResourceIds>ResourceId"`
	}
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	if len(req.ResourceIDs) == 0 || len(req.ResourceIDs) > 10 {
		return 0, nil, invalidInput("1 validation error detected: Value at 'resourceIds' failed to satisfy constraint: Member must have length between 1 and 10")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	typ := r.PathValue("type")
	resp := struct {
		XMLName         xml.Name            `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListTagsForResourcesResponse"`
		ResourceTagSets []resourceTagSetXML `xml:"ResourceTagSets>ResourceTagSet"`
	}{}
	for _, id := range req.ResourceIDs {
		tags, err := s.tagsLocked(typ, bareID(id))
		if err != nil {
			return 0, nil, err
		}
		resp.ResourceTagSets = append(resp.ResourceTagSets, tagSet(typ, bareID(id), tags))
	}
	return 0, resp, nil
}
