package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// Route53Client returns a Route53 client as the configuration says, with
// credentials from the AWS SDK's default chain. The SDK's own retries are kept
// for network errors; Meridian's DNS applier retries throttling itself. observe,
// when not nil, is told every request's operation and whether Route53 throttled it.
func (r *Route53) Route53Client(ctx context.Context, observe func(operation string, throttled bool)) (*route53.Client, error) {
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
		if observe != nil {
			o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
				// In the Finalize step after the SDK's retry middleware: every attempt.
				return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("MeridianObserve",
					func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
						out, md, err := next.HandleFinalize(ctx, in)
						var apiErr smithy.APIError
						throttled := errors.As(err, &apiErr) && (apiErr.ErrorCode() == "Throttling" || apiErr.ErrorCode() == "ThrottlingException" || apiErr.ErrorCode() == "PriorRequestNotComplete")
						observe(awsmiddleware.GetOperationName(ctx), throttled)
						return out, md, err
					}), middleware.After)
			})
		}
	}), nil
}
