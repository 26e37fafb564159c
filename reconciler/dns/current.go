package dns

import (
	"context"
	"fmt"
	"maps"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// Current reads what the plan needs from Route53: every record set of the zone and
// the health checks tagged as this fleet's. A partial read is an error, never a
// smaller state, so that nothing is withdrawn because a read failed.
func (a *Applier) Current(ctx context.Context) (State, error) {
	s := State{Fleet: a.opts.Fleet}
	in := &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(a.opts.HostedZoneID)}
	for {
		out, err := call(ctx, a, "ListResourceRecordSets", func(ctx context.Context) (*route53.ListResourceRecordSetsOutput, error) {
			return a.api.ListResourceRecordSets(ctx, in)
		})
		if err != nil {
			return State{}, fmt.Errorf("route53 zone %s: listing record sets: %w; check the hosted zone id in fleet.yaml and Meridian's permissions", a.opts.HostedZoneID, err)
		}
		for _, rr := range out.ResourceRecordSets {
			s.Records = append(s.Records, fromSDK(rr))
		}
		if !out.IsTruncated {
			break
		}
		in = &route53.ListResourceRecordSetsInput{HostedZoneId: in.HostedZoneId, StartRecordName: out.NextRecordName,
			StartRecordType: out.NextRecordType, StartRecordIdentifier: out.NextRecordIdentifier}
	}

	var all []types.HealthCheck
	hin := &route53.ListHealthChecksInput{}
	for {
		out, err := call(ctx, a, "ListHealthChecks", func(ctx context.Context) (*route53.ListHealthChecksOutput, error) {
			return a.api.ListHealthChecks(ctx, hin)
		})
		if err != nil {
			return State{}, fmt.Errorf("route53 health checks: listing: %w; check Meridian's permissions", err)
		}
		all = append(all, out.HealthChecks...)
		if !out.IsTruncated {
			break
		}
		hin = &route53.ListHealthChecksInput{Marker: out.NextMarker}
	}
	// Tags are read only for health checks not known as this fleet's yet: Meridian
	// tags its own when it creates them, so at 1,200 placements this saves 90 of a
	// read's 112 calls. (A health check someone re-tags away from the fleet stays
	// the fleet's until Meridian restarts.)
	a.mu.Lock()
	known := maps.Clone(a.fleetTags) // with the checks created since the last read
	a.mu.Unlock()
	tags := map[string]map[string]string{}
	var unknown []string
	for _, h := range all {
		id := aws.ToString(h.Id)
		if t, ok := known[id]; ok {
			tags[id] = t
		} else {
			unknown = append(unknown, id)
		}
	}
	for i := 0; i < len(unknown); i += 10 {
		ids := unknown[i:min(i+10, len(unknown))]
		out, err := call(ctx, a, "ListTagsForResources", func(ctx context.Context) (*route53.ListTagsForResourcesOutput, error) {
			return a.api.ListTagsForResources(ctx, &route53.ListTagsForResourcesInput{ResourceType: types.TagResourceTypeHealthcheck, ResourceIds: ids})
		})
		if err != nil {
			return State{}, fmt.Errorf("route53 health checks %v: listing tags: %w; check Meridian's permissions", ids, err)
		}
		for _, set := range out.ResourceTagSets {
			m := map[string]string{}
			for _, t := range set.Tags {
				m[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			tags[aws.ToString(set.ResourceId)] = m
		}
	}
	s.AccountHealthChecks = len(all)
	s.HealthCheckLimit, s.RecordSetLimit = a.readLimits(ctx)
	ours := map[string]map[string]string{}
	for _, h := range all {
		id := aws.ToString(h.Id)
		t := tags[id]
		if t[TagFleet] != a.opts.Fleet {
			continue
		}
		ours[id] = t
		s.HealthChecks = append(s.HealthChecks, HealthCheck{
			ID: id, CallerReference: aws.ToString(h.CallerReference), Version: aws.ToInt64(h.HealthCheckVersion),
			Tenant: t[TagTenant], App: t[TagApp], Region: t[TagRegion], Spec: specOf(h.HealthCheckConfig),
		})
	}
	a.mu.Lock()
	a.fleetTags = ours
	a.noteChecksLocked(s)
	a.mu.Unlock()
	return s, nil
}
