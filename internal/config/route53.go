package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/route53"
)

// Route53Client returns a Route53 client as the configuration says, with
// credentials from the AWS SDK's default chain. The SDK's own retries are kept
// for network errors; Meridian's DNS applier retries throttling itself.
func (r *Route53) Route53Client(ctx context.Context) (*route53.Client, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(r.Region)}
	if r.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(r.Profile))
	}
	if r.CAFile != "" {
		pem, err := os.ReadFile(r.CAFile)
		if err != nil {
			return nil, fmt.Errorf("route53.caFile: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("route53.caFile %s: no PEM certificate in it", r.CAFile)
		}
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		opts = append(opts, awsconfig.WithHTTPClient(&http.Client{Transport: transport}))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("route53: AWS configuration: %w", err)
	}
	return route53.NewFromConfig(cfg, func(o *route53.Options) {
		if r.Endpoint != "" {
			o.BaseEndpoint = aws.String(r.Endpoint)
		}
	}), nil
}
