package dns

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// Tag keys that mark a health check as a fleet's and name its placement.
const (
	TagFleet  = "meridian.dev/fleet"
	TagTenant = "meridian.dev/tenant"
	TagApp    = "meridian.dev/app"
	TagRegion = "meridian.dev/region"
)

func toSDK(r Record) *types.ResourceRecordSet {
	out := &types.ResourceRecordSet{Name: aws.String(r.Name), Type: types.RRType(r.Type)}
	if r.SetIdentifier != "" {
		out.SetIdentifier = aws.String(r.SetIdentifier)
	}
	out.Region = types.ResourceRecordSetRegion(r.Region)
	if r.Alias != nil {
		out.AliasTarget = &types.AliasTarget{HostedZoneId: aws.String(r.Alias.HostedZoneID), DNSName: aws.String(r.Alias.DNSName), EvaluateTargetHealth: r.Alias.EvaluateTargetHealth}
	} else {
		out.TTL = aws.Int64(r.TTL)
		for _, v := range r.Values {
			out.ResourceRecords = append(out.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
		}
	}
	if r.HealthCheckID != "" {
		out.HealthCheckId = aws.String(r.HealthCheckID)
	}
	return out
}

func fromSDK(rr types.ResourceRecordSet) Record {
	r := Record{
		Name:          canonical(unescape(aws.ToString(rr.Name))),
		Type:          string(rr.Type),
		SetIdentifier: aws.ToString(rr.SetIdentifier),
		Region:        string(rr.Region),
		TTL:           aws.ToInt64(rr.TTL),
		HealthCheckID: aws.ToString(rr.HealthCheckId),
	}
	for _, v := range rr.ResourceRecords {
		r.Values = append(r.Values, aws.ToString(v.Value))
	}
	if at := rr.AliasTarget; at != nil {
		id := aws.ToString(at.HostedZoneId)
		r.Alias = &Alias{HostedZoneID: id[strings.LastIndexByte(id, '/')+1:], DNSName: canonical(aws.ToString(at.DNSName)), EvaluateTargetHealth: at.EvaluateTargetHealth}
	}
	return r
}

// unescape undoes Route53's octal escaping of names (\052 for *); names Meridian
// writes have none, so this only keeps foreign names readable.
func unescape(name string) string { return strings.ReplaceAll(name, `\052`, "*") }

func checkConfig(s HealthCheckSpec) *types.HealthCheckConfig {
	c := &types.HealthCheckConfig{
		Type:                     types.HealthCheckType(s.Protocol),
		FullyQualifiedDomainName: aws.String(s.FQDN),
		Port:                     aws.Int32(int32(s.Port)),
		ResourcePath:             aws.String(s.Path),
		RequestInterval:          aws.Int32(int32(s.IntervalSeconds)),
		FailureThreshold:         aws.Int32(int32(s.FailureThreshold)),
	}
	if s.IPAddress != "" {
		c.IPAddress = aws.String(s.IPAddress)
	}
	return c
}

func specOf(c *types.HealthCheckConfig) HealthCheckSpec {
	if c == nil {
		return HealthCheckSpec{}
	}
	return HealthCheckSpec{
		Protocol:         string(c.Type),
		IPAddress:        aws.ToString(c.IPAddress),
		FQDN:             canonical(aws.ToString(c.FullyQualifiedDomainName)),
		Port:             int(aws.ToInt32(c.Port)),
		Path:             aws.ToString(c.ResourcePath),
		IntervalSeconds:  int(aws.ToInt32(c.RequestInterval)),
		FailureThreshold: int(aws.ToInt32(c.FailureThreshold)),
	}
}
