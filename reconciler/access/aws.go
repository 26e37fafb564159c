package access

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// LoadAWS is the AWS configuration of the daemon's EKS access: credentials
// from the SDK's default chain (IRSA web identity, EKS Pod Identity,
// environment, shared files, instance role) or from profile when set, and an
// HTTP client that also trusts the PEM certificates of caFile when set. The
// SDK cannot add AWS_CA_BUNDLE to that client: with both set, LoadAWS fails,
// so leave the variable unset.
func LoadAWS(ctx context.Context, profile, caFile string) (aws.Config, error) {
	var load []func(*awsconfig.LoadOptions) error
	if profile != "" {
		load = append(load, awsconfig.WithSharedConfigProfile(profile))
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return aws.Config{}, fmt.Errorf("CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return aws.Config{}, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
		}
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		load = append(load, awsconfig.WithHTTPClient(&http.Client{Transport: transport}))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	return cfg, nil
}
