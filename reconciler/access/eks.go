package access

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/oauth2"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"

	"meridian.dev/meridian/fleet"
)

// The token EKS accepts: a presigned STS GetCallerIdentity URL, base64url
// without padding, after this prefix. The URL signs the header that names
// the cluster, so a token made for one cluster is refused by another.
const (
	tokenPrefix     = "k8s-aws-v1."
	clusterIDHeader = "x-k8s-aws-id"
	// presignExpires is the X-Amz-Expires of the presigned URL, in seconds,
	// as the EKS authenticator expects.
	presignExpires = "60"
	// TokenLifetime is how long Meridian uses a token: EKS accepts one for 15
	// minutes after it was signed; a minute is left for clocks and requests
	// under way.
	TokenLifetime = 14 * time.Minute
	// sessionName is the RoleSessionName of AssumeRole, which CloudTrail and
	// the EKS audit log show.
	sessionName = "meridian"
)

// EKSOptions say how Meridian reaches the EKS and STS APIs.
type EKSOptions struct {
	// AWS is the base AWS configuration: credentials (the SDK's default chain:
	// IRSA web identity, EKS Pod Identity, environment, shared files, instance
	// role), HTTP client and retries. Its Region is replaced by each cluster's.
	AWS aws.Config
	// EKSEndpoint is the URL of an EKS-compatible API; empty means AWS's
	// endpoint in each cluster's region.
	EKSEndpoint string
	// STSEndpoint is the URL of an STS-compatible API, for AssumeRole and the
	// presigned GetCallerIdentity of the tokens; empty means AWS's regional STS
	// endpoint of each cluster's region.
	STSEndpoint string
	// Now is the clock of the token cache; nil means time.Now.
	Now func() time.Time
}

// EKS reaches Amazon EKS clusters with IAM, as the reconciler's EKSClusters:
// the endpoint and CA come from EKS DescribeCluster, the bearer token is made
// by Meridian itself (no aws CLI, no exec plugin) from its AWS credentials, or
// from those of the cluster's role, which it assumes through STS. One token
// source is kept per cluster, name, region and role, and reused by every
// configuration returned for it.
type EKS struct {
	opts EKSOptions

	mu       sync.Mutex
	clusters map[eksKey]*eksCluster
}

type eksKey struct{ name, region, role string }

// eksCluster is what EKS keeps for one cluster: its clients and token source.
type eksCluster struct {
	// role is the credentials of the role's session, nil without a role.
	role   aws.CredentialsProvider
	eks    *eks.Client
	tokens *tokenSource
}

// NewEKS reaches EKS clusters as opts say.
func NewEKS(opts EKSOptions) *EKS {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &EKS{opts: opts, clusters: map[eksKey]*eksCluster{}}
}

// Config describes the cluster and returns its REST configuration: its
// endpoint, its CA and a WrapTransport that sets a bearer token made from
// Meridian's AWS credentials, made again before it expires. Errors name the
// cluster and say what to do.
func (e *EKS) Config(ctx context.Context, c fleet.EKSCluster, awsRegion string) (*rest.Config, error) {
	cl := e.cluster(c, awsRegion)
	as := "Meridian's AWS identity"
	if cl.role != nil {
		as = "role " + c.RoleARN
		if _, err := cl.role.Retrieve(ctx); err != nil {
			return nil, fmt.Errorf("EKS cluster %q in %s: assuming role %s: %w; allow Meridian's AWS identity sts:AssumeRole on the role, and name it in the role's trust policy (docs/regions.md)",
				c.Name, awsRegion, c.RoleARN, err)
		}
	}
	out, err := cl.eks.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(c.Name)})
	var notFound *ekstypes.ResourceNotFoundException
	var apiErr smithy.APIError
	switch {
	case errors.As(err, &notFound):
		return nil, fmt.Errorf("EKS cluster %q: not found in %s; correct spec.cluster.eks.name, or spec.cluster.eks.region (default spec.awsRegion)", c.Name, awsRegion)
	case errors.As(err, &apiErr) && (apiErr.ErrorCode() == "AccessDeniedException" || apiErr.ErrorCode() == "AccessDenied"):
		return nil, fmt.Errorf("EKS cluster %q in %s: %s may not describe it; allow eks:DescribeCluster on the cluster to it (docs/regions.md): %w", c.Name, awsRegion, as, err)
	case err != nil:
		return nil, fmt.Errorf("EKS cluster %q in %s: describing it as %s: %w", c.Name, awsRegion, as, err)
	}
	desc := out.Cluster
	if desc == nil || aws.ToString(desc.Endpoint) == "" || desc.CertificateAuthority == nil || aws.ToString(desc.CertificateAuthority.Data) == "" {
		status := ekstypes.ClusterStatus("unknown")
		if desc != nil {
			status = desc.Status
		}
		return nil, fmt.Errorf("EKS cluster %q in %s: has no endpoint and CA yet (status %s); Meridian reaches it once it is ACTIVE", c.Name, awsRegion, status)
	}
	ca, err := base64.StdEncoding.DecodeString(aws.ToString(desc.CertificateAuthority.Data))
	if err != nil {
		return nil, fmt.Errorf("EKS cluster %q in %s: its certificate authority data is not base64: %w", c.Name, awsRegion, err)
	}
	return &rest.Config{
		Host:            aws.ToString(desc.Endpoint),
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		WrapTransport:   transport.ResettableTokenSourceWrapTransport(cl.tokens),
	}, nil
}

// cluster returns the clients and token source of a cluster, made on first use.
func (e *EKS) cluster(c fleet.EKSCluster, awsRegion string) *eksCluster {
	key := eksKey{name: c.Name, region: awsRegion, role: c.RoleARN}
	e.mu.Lock()
	defer e.mu.Unlock()
	if cl, ok := e.clusters[key]; ok {
		return cl
	}
	cfg := e.opts.AWS.Copy()
	cfg.Region = awsRegion
	stsEndpoint := func(o *sts.Options) {
		if e.opts.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(e.opts.STSEndpoint)
		}
	}
	if c.RoleARN != "" {
		assume := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg, stsEndpoint), c.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = sessionName
		})
		cfg.Credentials = aws.NewCredentialsCache(assume)
	}
	presign := sts.NewPresignClient(sts.NewFromConfig(cfg, stsEndpoint))
	cl := &eksCluster{
		eks: eks.NewFromConfig(cfg, func(o *eks.Options) {
			if e.opts.EKSEndpoint != "" {
				o.BaseEndpoint = aws.String(e.opts.EKSEndpoint)
			}
		}),
		tokens: &tokenSource{now: e.opts.Now, mint: func(ctx context.Context) (string, error) {
			return Token(ctx, presign, c.Name)
		}, what: fmt.Sprintf("EKS cluster %q in %s", c.Name, awsRegion)},
	}
	if c.RoleARN != "" {
		cl.role = cfg.Credentials
	}
	e.clusters[key] = cl
	return cl
}

// Token makes the bearer token of an EKS cluster: a GetCallerIdentity request
// presigned by presign's credentials, valid for 60 seconds of STS's own check
// and accepted by EKS for 15 minutes, that signs the cluster's name.
func Token(ctx context.Context, presign *sts.PresignClient, cluster string) (string, error) {
	req, err := presign.PresignGetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, func(po *sts.PresignOptions) {
		po.ClientOptions = append(po.ClientOptions, func(o *sts.Options) {
			o.APIOptions = append(o.APIOptions,
				smithyhttp.SetHeaderValue(clusterIDHeader, cluster),
				smithyhttp.SetHeaderValue("X-Amz-Expires", presignExpires))
		})
	})
	if err != nil {
		return "", err
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(req.URL)), nil
}

// tokenSource keeps a cluster's token for TokenLifetime and makes a new one
// after that, or after the API server refused it (ResetTokenOlderThan).
type tokenSource struct {
	now  func() time.Time
	mint func(context.Context) (string, error)
	what string // the cluster, for errors

	mu     sync.Mutex
	token  string
	minted time.Time
}

var _ transport.ResettableTokenSource = (*tokenSource)(nil)

// Token returns the cached token, or a new one once it is TokenLifetime old.
// Its errors name the cluster and never hold a credential.
func (t *tokenSource) Token() (*oauth2.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.token == "" || now.Sub(t.minted) >= TokenLifetime || now.Before(t.minted) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		token, err := t.mint(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: making a token from Meridian's AWS credentials: %w", t.what, err)
		}
		t.token, t.minted = token, now
	}
	return &oauth2.Token{AccessToken: t.token, TokenType: "Bearer", Expiry: t.minted.Add(TokenLifetime)}, nil
}

// ResetTokenOlderThan drops a token minted before when, so that the next
// request makes a new one: the API server refused it.
func (t *tokenSource) ResetTokenOlderThan(when time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.minted.Before(when) {
		t.token = ""
	}
}
