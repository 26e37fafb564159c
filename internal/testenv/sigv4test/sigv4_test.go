package sigv4test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// TestVerify checks signatures made by the SDK's own signer, in the header and
// presigned, and refuses each kind of bad one.
func TestVerify(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	creds := map[string]Credential{
		"AKIDLONG": {Secret: "long-secret"},
		"ASIATEMP": {Secret: "temp-secret", Token: "session", Expires: now.Add(time.Hour)},
		"ASIAOLD":  {Secret: "old-secret", Token: "old-session", Expires: now.Add(-time.Minute)},
	}
	lookup := func(akid string) (Credential, bool) { c, ok := creds[akid]; return c, ok }
	const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	sign := func(akid, secret, token string, at time.Time, presign bool) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, "https://sts.example.com/?Action=GetCallerIdentity&Version=2011-06-15", nil)
		req.Header.Set("x-k8s-aws-id", "prod")
		c := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token}
		if presign {
			req.URL.RawQuery += "&X-Amz-Expires=60"
			u, _, err := v4.NewSigner().PresignHTTP(t.Context(), c, req, emptyHash, "sts", "us-east-1", at)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := http.NewRequest(http.MethodGet, u, nil)
			out.Header.Set("x-k8s-aws-id", "prod")
			return out
		}
		if err := v4.NewSigner().SignHTTP(t.Context(), c, req, emptyHash, "sts", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
		return req
	}
	tests := []struct {
		name string
		req  *http.Request
		want Kind // -1: accepted
	}{
		{"header", sign("AKIDLONG", "long-secret", "", now, false), -1},
		{"presigned", sign("AKIDLONG", "long-secret", "", now, true), -1},
		{"presigned, temporary credentials", sign("ASIATEMP", "temp-secret", "session", now, true), -1},
		{"no signature", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "https://sts.example.com/", nil)
			return r
		}(), Missing},
		{"a wrong secret", sign("AKIDLONG", "wrong", "", now, true), Mismatch},
		{"an unknown key", sign("AKIDOTHER", "long-secret", "", now, false), UnknownKey},
		{"a wrong session token", sign("ASIATEMP", "temp-secret", "other", now, true), UnknownKey},
		{"expired credentials", sign("ASIAOLD", "old-secret", "old-session", now, false), ExpiredToken},
		{"signed 16 minutes ago", sign("AKIDLONG", "long-secret", "", now.Add(-16*time.Minute), true), Expired},
		{"a signed header changed", func() *http.Request {
			r := sign("AKIDLONG", "long-secret", "", now, true)
			r.Header.Set("x-k8s-aws-id", "staging")
			return r
		}(), Mismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sg, f := Verify(tt.req, nil, now, lookup)
			switch {
			case tt.want == -1 && f != nil:
				t.Fatalf("refused: %v", f)
			case tt.want == -1:
				if sg.Service != "sts" || sg.Region != "us-east-1" || !strings.Contains(strings.Join(sg.Headers, ";"), "x-k8s-aws-id") {
					t.Errorf("signed = %+v", sg)
				}
			case f == nil:
				t.Fatalf("accepted, want refused (%d)", tt.want)
			case f.Kind != tt.want:
				t.Errorf("refused as %d (%s), want %d", f.Kind, f.Message, tt.want)
			}
		})
	}
}
