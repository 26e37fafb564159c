package dns

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"meridian.dev/meridian/internal/awsload"
)

// ClientOptions say how to reach Route53. Credentials are never among them:
// they come from the AWS SDK's default chain (environment, web identity, shared
// files, instance role).
type ClientOptions struct {
	// Region signs the requests; Route53's API lives in us-east-1.
	Region string
	// Endpoint is the URL of a Route53-compatible API; empty means AWS's.
	Endpoint string
	// Profile is the shared-config profile to take credentials from; empty
	// means AWS_PROFILE or the default.
	Profile string
	// CAFile holds PEM certificates trusted for Endpoint besides the system's.
	// The SDK cannot add AWS_CA_BUNDLE to the client that trusts them: with
	// both set, NewRoute53Client fails, so leave that variable unset.
	CAFile string
	// Observe, when not nil, is told every request's operation and whether
	// Route53 throttled it, retries included.
	Observe func(operation string, throttled bool)
}

// NewRoute53Client returns the real Route53 client, which implements
// Route53API. The SDK's own retries are kept for network errors; the Applier
// retries throttling itself. Errors name the option at fault.
func NewRoute53Client(ctx context.Context, opts ClientOptions) (*route53.Client, error) {
	cfg, err := awsload.Config(ctx, opts.Region, opts.Profile, opts.CAFile)
	if err != nil {
		return nil, err
	}
	return route53.NewFromConfig(cfg, func(o *route53.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		if opts.Observe != nil {
			o.APIOptions = append(o.APIOptions, observer(opts.Observe))
		}
	}), nil
}

// observer adds a middleware that tells observe of every attempt: it sits in the
// Finalize step after the SDK's retry middleware.
func observer(observe func(operation string, throttled bool)) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("MeridianObserve",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleFinalize(ctx, in)
				var apiErr smithy.APIError
				throttled := errors.As(err, &apiErr) && (apiErr.ErrorCode() == "Throttling" || apiErr.ErrorCode() == "ThrottlingException" || apiErr.ErrorCode() == "PriorRequestNotComplete")
				observe(awsmiddleware.GetOperationName(ctx), throttled)
				return out, md, err
			}), middleware.After)
	}
}
