package access

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"
	authv1 "k8s.io/api/authentication/v1"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/ekstest"
)

// awsConfig is an AWS configuration built by hand, so that nothing of the
// machine's environment (AWS_CA_BUNDLE, profiles) takes part.
func awsConfig(srv *ekstest.Server, akid, secret string) aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
		HTTPClient:  srv.Client(),
	}
}

const (
	role       = "arn:aws:iam::111122223333:role/meridian-deployer"
	otherRole  = "arn:aws:iam::111122223333:role/someone-else"
	clusterPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
)

func newEKSServer(t *testing.T) (*ekstest.Server, string) {
	t.Helper()
	srv := ekstest.NewServer()
	t.Cleanup(srv.Close)
	user := srv.AddCredentials("AKIDMERIDIAN", "meridian-secret", "meridian")
	srv.AddRole(role, user)
	srv.AddRole(otherRole, "arn:aws:iam::111122223333:user/nobody")
	srv.AddCluster(ekstest.Cluster{Name: "prod", Region: "eu-west-2", Endpoint: "https://prod.example.net", CA: []byte(clusterPEM)})
	srv.AddCluster(ekstest.Cluster{Name: "locked", Region: "eu-west-2", Endpoint: "https://locked.example.net", CA: []byte(clusterPEM), Describers: []string{role}})
	return srv, user
}

// TestEKSConfig describes clusters through the real eks client, as Meridian's
// own identity or a role it assumes, and says what to do when it cannot.
func TestEKSConfig(t *testing.T) {
	srv, _ := newEKSServer(t)
	e := NewEKS(EKSOptions{AWS: awsConfig(srv, "AKIDMERIDIAN", "meridian-secret"), EKSEndpoint: srv.URL, STSEndpoint: srv.URL})
	ctx := t.Context()

	cfg, err := e.Config(ctx, fleet.EKSCluster{Name: "prod"}, "eu-west-2")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://prod.example.net" || string(cfg.CAData) != clusterPEM || cfg.WrapTransport == nil || cfg.BearerToken != "" {
		t.Errorf("config: host %q, CA %q, token source %t, static token %q; want the cluster's endpoint and CA, a token source and no static token",
			cfg.Host, cfg.CAData, cfg.WrapTransport != nil, cfg.BearerToken)
	}

	tests := []struct {
		name    string
		cluster fleet.EKSCluster
		region  string
		want    string
	}{{
		name:    "no such cluster",
		cluster: fleet.EKSCluster{Name: "prod"},
		region:  "us-east-1",
		want:    `EKS cluster "prod": not found in us-east-1; correct spec.cluster.eks.name, or spec.cluster.eks.region (default spec.awsRegion)`,
	}, {
		name:    "not allowed to describe it",
		cluster: fleet.EKSCluster{Name: "locked"},
		region:  "eu-west-2",
		want: `EKS cluster "locked" in eu-west-2: Meridian's AWS identity may not describe it; allow eks:DescribeCluster on the cluster to it (docs/regions.md): ` +
			`operation error EKS: DescribeCluster, https response error StatusCode: 403, RequestID: 00000000-0000-4000-8000-000000000003, AccessDeniedException: ` +
			`User: arn:aws:iam::111122223333:user/meridian is not authorized to perform: eks:DescribeCluster on resource: arn:aws:eks:eu-west-2:111122223333:cluster/locked`,
	}, {
		name:    "a role Meridian may not assume",
		cluster: fleet.EKSCluster{Name: "prod", RoleARN: otherRole},
		region:  "eu-west-2",
		want: `EKS cluster "prod" in eu-west-2: assuming role ` + otherRole + `: failed to refresh cached credentials, ` +
			`operation error STS: AssumeRole, https response error StatusCode: 403, RequestID: 00000000-0000-4000-8000-000000000004, ` +
			`api error AccessDenied: User: arn:aws:iam::111122223333:user/meridian is not authorized to perform: sts:AssumeRole on resource: ` + otherRole +
			`; allow Meridian's AWS identity sts:AssumeRole on the role, and name it in the role's trust policy (docs/regions.md)`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Config(ctx, tt.cluster, tt.region)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%s\nwant it to hold:\n%s", err, tt.want)
			}
			if strings.Contains(err.Error(), "meridian-secret") {
				t.Errorf("the error holds the secret access key: %s", err)
			}
		})
	}

	t.Run("through a role", func(t *testing.T) {
		before := len(srv.Calls())
		if _, err := e.Config(ctx, fleet.EKSCluster{Name: "locked", RoleARN: role}, "eu-west-2"); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range srv.Calls()[before:] {
			got = append(got, c.Service+" "+c.Operation+" "+c.AccessKeyID[:4]+" "+c.Error)
		}
		want := []string{"sts AssumeRole AKID ", "eks DescribeCluster ASIA "}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
}

// TestToken makes tokens as EKS wants them and has the test authenticator,
// which checks them as EKS does, accept them; a token of another cluster, of
// unknown credentials or older than 15 minutes is refused.
func TestToken(t *testing.T) {
	srv, user := newEKSServer(t)
	auth, err := ekstest.NewAuthenticator(srv, "prod", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auth.Close)
	auth.AddAccessEntry(user, ekstest.AccessEntry{Username: "meridian", Groups: []string{"meridian:deployers"}})
	auth.AddAccessEntry(role, ekstest.AccessEntry{Username: "deployer"})
	e := NewEKS(EKSOptions{AWS: awsConfig(srv, "AKIDMERIDIAN", "meridian-secret"), EKSEndpoint: srv.URL, STSEndpoint: srv.URL})

	token := func(t *testing.T, c fleet.EKSCluster) string {
		t.Helper()
		tok, err := e.cluster(c, "eu-west-2").tokens.Token()
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	tok := token(t, fleet.EKSCluster{Name: "prod"})
	t.Run("format", func(t *testing.T) {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, "k8s-aws-v1."))
		if err != nil || !strings.HasPrefix(tok, "k8s-aws-v1.") {
			t.Fatalf("token %q is not k8s-aws-v1. and base64url (%v)", tok, err)
		}
		u, err := url.Parse(string(raw))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		got := map[string]string{"Action": q.Get("Action"), "X-Amz-Expires": q.Get("X-Amz-Expires"), "X-Amz-SignedHeaders": q.Get("X-Amz-SignedHeaders"), "method": u.Scheme + "://" + u.Host}
		want := map[string]string{"Action": "GetCallerIdentity", "X-Amz-Expires": "60", "X-Amz-SignedHeaders": "host;x-k8s-aws-id", "method": srv.URL}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("presigned URL (-want +got):\n%s", diff)
		}
	})
	review := func(t *testing.T, token string) ekstest.Review {
		t.Helper()
		before := len(auth.Reviews())
		body, _ := json.Marshal(authv1.TokenReview{Spec: authv1.TokenReviewSpec{Token: token}})
		resp, err := srv.Client().Post(auth.URL+"/authenticate", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r := auth.Reviews()
		if len(r) != before+1 {
			t.Fatalf("%d reviews, want %d", len(r), before+1)
		}
		return r[before]
	}
	tests := []struct {
		name  string
		token string
		want  ekstest.Review
	}{
		{"Meridian's own identity", tok, ekstest.Review{Authenticated: true, Username: "meridian"}},
		{"through a role", token(t, fleet.EKSCluster{Name: "prod", RoleARN: role}), ekstest.Review{Authenticated: true, Username: "deployer"}},
		{"a token of another cluster", token(t, fleet.EKSCluster{Name: "staging"}), ekstest.Review{Reason: "STS refused the token's request: 403 SignatureDoesNotMatch"}},
		{"not a token", "k8s-aws-v1.bm90IGEgdG9rZW4", ekstest.Review{Reason: "token is not a presigned request of the STS endpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, review(t, tt.token)); diff != "" {
				t.Errorf("review (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("unknown credentials", func(t *testing.T) {
		other := NewEKS(EKSOptions{AWS: awsConfig(srv, "AKIDMERIDIAN", "wrong-secret"), STSEndpoint: srv.URL})
		tok, err := other.cluster(fleet.EKSCluster{Name: "prod"}, "eu-west-2").tokens.Token()
		if err != nil {
			t.Fatal(err)
		}
		want := ekstest.Review{Reason: "STS refused the token's request: 403 SignatureDoesNotMatch"}
		if diff := cmp.Diff(want, review(t, tok.AccessToken)); diff != "" {
			t.Errorf("review (-want +got):\n%s", diff)
		}
	})
	t.Run("older than 15 minutes", func(t *testing.T) {
		tok, err := srv.SignedToken(t.Context(), "AKIDMERIDIAN", "meridian-secret", "prod", time.Now().Add(-16*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		got := review(t, tok)
		if got.Authenticated || !strings.HasPrefix(got.Reason, "token expired: signed 16m") {
			t.Errorf("review = %+v, want refused as expired", got)
		}
	})
}

// TestTokenCache keeps a token for 14 minutes, makes a new one after that, and
// after the API server refused it.
func TestTokenCache(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	minted := 0
	ts := &tokenSource{
		now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		mint: func(context.Context) (string, error) {
			minted++
			return "token-" + string(rune('0'+minted)), nil
		},
	}
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	get := func() string {
		tok, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	var got []string
	got = append(got, get())
	advance(13 * time.Minute)
	got = append(got, get())
	advance(time.Minute)
	got = append(got, get())
	ts.ResetTokenOlderThan(now.Add(time.Second))
	got = append(got, get())
	ts.ResetTokenOlderThan(now.Add(-time.Second))
	got = append(got, get())
	want := []string{"token-1", "token-1", "token-2", "token-3", "token-3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tokens (-want +got):\n%s", diff)
	}
}
