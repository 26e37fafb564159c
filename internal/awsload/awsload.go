// Package awsload loads the AWS SDK configuration Meridian's AWS clients share
// (Route53, and EKS and STS for regions): credentials from the SDK's default
// chain or a shared-config profile, and an HTTP client that also trusts a CA
// file's certificates.
package awsload

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

// Config is the AWS configuration: credentials from the SDK's default chain
// (IRSA web identity, EKS Pod Identity, environment, shared files, instance role)
// or from profile when set; region when set; and an HTTP client that also trusts
// the PEM certificates of caFile when set. The SDK cannot add AWS_CA_BUNDLE to
// that client: with both set, Config fails, so leave the variable unset.
func Config(ctx context.Context, region, profile, caFile string) (aws.Config, error) {
	var load []func(*awsconfig.LoadOptions) error
	if region != "" {
		load = append(load, awsconfig.WithRegion(region))
	}
	if profile != "" {
		load = append(load, awsconfig.WithSharedConfigProfile(profile))
	}
	if caFile != "" {
		client, err := trustingClient(caFile)
		if err != nil {
			return aws.Config{}, err
		}
		load = append(load, awsconfig.WithHTTPClient(client))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	return cfg, nil
}

// trustingClient returns an HTTP client that trusts the system's certificates
// and those of caFile.
func trustingClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: transport}, nil
}
