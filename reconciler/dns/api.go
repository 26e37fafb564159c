package dns

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/route53"
)

// Route53API is the subset of the Route53 API Meridian uses: record sets of one
// hosted zone, their change status, and health checks with their tags. Callers
// may rely on nothing beyond Route53's own documented behaviour; *route53.Client
// implements it, and tests drive that real client against internal/testenv/route53test.
type Route53API interface {
	// ListResourceRecordSets pages through the zone's record sets in Route53's order.
	ListResourceRecordSets(ctx context.Context, in *route53.ListResourceRecordSetsInput, opts ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error)
	// ChangeResourceRecordSets applies one atomic batch and returns its change id.
	ChangeResourceRecordSets(ctx context.Context, in *route53.ChangeResourceRecordSetsInput, opts ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error)
	// GetChange reports whether a batch is PENDING or INSYNC.
	GetChange(ctx context.Context, in *route53.GetChangeInput, opts ...func(*route53.Options)) (*route53.GetChangeOutput, error)
	// ListHealthChecks pages through the account's health checks.
	ListHealthChecks(ctx context.Context, in *route53.ListHealthChecksInput, opts ...func(*route53.Options)) (*route53.ListHealthChecksOutput, error)
	// ListTagsForResources returns the tags of up to 10 health checks.
	ListTagsForResources(ctx context.Context, in *route53.ListTagsForResourcesInput, opts ...func(*route53.Options)) (*route53.ListTagsForResourcesOutput, error)
	// CreateHealthCheck is idempotent for a CallerReference and configuration.
	CreateHealthCheck(ctx context.Context, in *route53.CreateHealthCheckInput, opts ...func(*route53.Options)) (*route53.CreateHealthCheckOutput, error)
	// ChangeTagsForResource tags a new health check as the fleet's.
	ChangeTagsForResource(ctx context.Context, in *route53.ChangeTagsForResourceInput, opts ...func(*route53.Options)) (*route53.ChangeTagsForResourceOutput, error)
	// UpdateHealthCheck changes a check in place, refused on a version mismatch.
	UpdateHealthCheck(ctx context.Context, in *route53.UpdateHealthCheckInput, opts ...func(*route53.Options)) (*route53.UpdateHealthCheckOutput, error)
	// GetAccountLimit reads the account's health-check limit (MAX_HEALTH_CHECKS_BY_OWNER).
	GetAccountLimit(ctx context.Context, in *route53.GetAccountLimitInput, opts ...func(*route53.Options)) (*route53.GetAccountLimitOutput, error)
	// GetHostedZoneLimit reads the zone's record-set limit (MAX_RRSETS_BY_ZONE).
	GetHostedZoneLimit(ctx context.Context, in *route53.GetHostedZoneLimitInput, opts ...func(*route53.Options)) (*route53.GetHostedZoneLimitOutput, error)
	// GetHealthCheckStatus reports each Route53 checker's last observation of a
	// check.
	GetHealthCheckStatus(ctx context.Context, in *route53.GetHealthCheckStatusInput, opts ...func(*route53.Options)) (*route53.GetHealthCheckStatusOutput, error)
	// DeleteHealthCheck is refused with HealthCheckInUse while a record uses the check.
	DeleteHealthCheck(ctx context.Context, in *route53.DeleteHealthCheckInput, opts ...func(*route53.Options)) (*route53.DeleteHealthCheckOutput, error)
}

var _ Route53API = (*route53.Client)(nil)
