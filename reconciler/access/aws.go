package access

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"meridian.dev/meridian/internal/awsload"
)

// LoadAWS is the AWS configuration of the daemon's EKS access: credentials
// from the SDK's default chain (IRSA web identity, EKS Pod Identity,
// environment, shared files, instance role) or from profile when set, and an
// HTTP client that also trusts the PEM certificates of caFile when set. The
// SDK cannot add AWS_CA_BUNDLE to that client: with both set, LoadAWS fails,
// so leave the variable unset.
func LoadAWS(ctx context.Context, profile, caFile string) (aws.Config, error) {
	return awsload.Config(ctx, "", profile, caFile)
}
