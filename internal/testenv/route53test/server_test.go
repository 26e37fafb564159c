package route53test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/smithy-go"
)

// client is the real SDK client configured explicitly for srv: nothing
// comes from the environment (AWS_CA_BUNDLE and friends stay out of it),
// and the SDK does not retry unless retries > 1.
func client(srv *Server, retries int) *route53.Client {
	return route53.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		HTTPClient:   srv.Client(),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = max(retries, 1)
				o.MaxBackoff = 10 * time.Millisecond
			})
		},
	})
}

func newServer(t *testing.T, opts Options) (*Server, *route53.Client) {
	t.Helper()
	srv := NewServer(opts)
	t.Cleanup(srv.Close)
	return srv, client(srv, 1)
}

// errorOf returns the API error code and message of err.
func errorOf(t *testing.T, err error) (string, string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error = %v, want an API error", err)
	}
	return apiErr.ErrorCode(), apiErr.ErrorMessage()
}

func ttl(n int64) *int64 { return &n }

func a(name string, ips ...string) types.ResourceRecordSet {
	rr := types.ResourceRecordSet{Name: aws.String(name), Type: types.RRTypeA, TTL: ttl(60)}
	for _, ip := range ips {
		rr.ResourceRecords = append(rr.ResourceRecords, types.ResourceRecord{Value: aws.String(ip)})
	}
	return rr
}

func latency(name, region, hc string, ips ...string) types.ResourceRecordSet {
	rr := a(name, ips...)
	rr.SetIdentifier, rr.Region = aws.String(region), types.ResourceRecordSetRegion(region)
	if hc != "" {
		rr.HealthCheckId = aws.String(hc)
	}
	return rr
}

func chg(action types.ChangeAction, rr types.ResourceRecordSet) types.Change {
	return types.Change{Action: action, ResourceRecordSet: &rr}
}

func changeRecords(ctx context.Context, c *route53.Client, zoneID string, changes ...types.Change) (*route53.ChangeResourceRecordSetsOutput, error) {
	return c.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zoneID),
		ChangeBatch:  &types.ChangeBatch{Changes: changes},
	})
}

// listAll lists every record set of the zone, one page of pageSize at a
// time, and returns them with the number of pages.
func listAll(t *testing.T, c *route53.Client, zoneID string, pageSize int32) ([]types.ResourceRecordSet, int) {
	t.Helper()
	in := &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID), MaxItems: aws.Int32(pageSize)}
	var all []types.ResourceRecordSet
	pages := 0
	for {
		out, err := c.ListResourceRecordSets(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, out.ResourceRecordSets...)
		if !out.IsTruncated {
			return all, pages
		}
		in.StartRecordName, in.StartRecordType, in.StartRecordIdentifier = out.NextRecordName, out.NextRecordType, out.NextRecordIdentifier
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTLSAndAuthentication(t *testing.T) {
	srv, c := newServer(t, Options{TLS: true})
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("URL = %s, want https on 127.0.0.1", srv.URL)
	}
	zoneID := srv.CreateZone("fleet.example.com")
	if _, err := c.GetHostedZone(context.Background(), &route53.GetHostedZoneInput{Id: aws.String(zoneID)}); err != nil {
		t.Fatalf("GetHostedZone over TLS: %v", err)
	}

	resp, err := srv.Client().Get(srv.URL + "/2013-04-01/hostedzone/" + zoneID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "<Code>MissingAuthenticationToken</Code>") {
		t.Errorf("unsigned request = %d %s, want 403 MissingAuthenticationToken", resp.StatusCode, body)
	}
}
