package ekstest

import (
	"context"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SignedToken is an EKS token for cluster signed with the given credentials at
// signedAt, for tests of tokens that a client would not make, such as expired
// ones: "k8s-aws-v1." and the base64url of a GetCallerIdentity URL of the
// server presigned with the SDK's own signer.
func (s *Server) SignedToken(ctx context.Context, accessKeyID, secretAccessKey, cluster string, signedAt time.Time) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Expires=60", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("x-k8s-aws-id", cluster)
	const emptyPayload = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	creds := aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey}
	u, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, emptyPayload, "sts", "us-east-1", signedAt)
	if err != nil {
		return "", err
	}
	return "k8s-aws-v1." + base64.RawURLEncoding.EncodeToString([]byte(u)), nil
}
