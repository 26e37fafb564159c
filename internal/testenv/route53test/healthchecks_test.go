package route53test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/google/go-cmp/cmp"
)

func httpCheck(port int32, path string) *types.HealthCheckConfig {
	return &types.HealthCheckConfig{
		Type:             types.HealthCheckTypeHttp,
		IPAddress:        aws.String("127.0.0.1"),
		Port:             aws.Int32(port),
		ResourcePath:     aws.String(path),
		RequestInterval:  aws.Int32(10),
		FailureThreshold: aws.Int32(2),
	}
}

func TestHealthCheckLifecycle(t *testing.T) {
	srv, c := newServer(t, Options{})
	ctx := context.Background()

	created, err := c.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String("meridian/prod/trucking/web/eu-west-1/1"), HealthCheckConfig: httpCheck(1, "/healthz")})
	if err != nil {
		t.Fatal(err)
	}
	hc := created.HealthCheck
	id := aws.ToString(hc.Id)
	wantCfg := &types.HealthCheckConfig{
		Type: types.HealthCheckTypeHttp, IPAddress: aws.String("127.0.0.1"), Port: aws.Int32(1), ResourcePath: aws.String("/healthz"),
		RequestInterval: aws.Int32(10), FailureThreshold: aws.Int32(2), MeasureLatency: aws.Bool(false), Inverted: aws.Bool(false),
		Disabled: aws.Bool(false), EnableSNI: aws.Bool(false),
		Regions: []types.HealthCheckRegion{"us-east-1", "us-west-1", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1"},
	}
	if diff := cmp.Diff(wantCfg, hc.HealthCheckConfig, cmp.AllowUnexported(types.HealthCheckConfig{})); diff != "" {
		t.Errorf("created config with Route53's defaults (-want +got):\n%s", diff)
	}
	if aws.ToInt64(hc.HealthCheckVersion) != 1 {
		t.Errorf("version = %d, want 1", aws.ToInt64(hc.HealthCheckVersion))
	}

	again, err := c.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String("meridian/prod/trucking/web/eu-west-1/1"), HealthCheckConfig: httpCheck(1, "/healthz")})
	if err != nil || aws.ToString(again.HealthCheck.Id) != id {
		t.Errorf("CreateHealthCheck again with the same reference and config = %v, %v; want the same check %s", again, err, id)
	}
	_, err = c.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String("meridian/prod/trucking/web/eu-west-1/1"), HealthCheckConfig: httpCheck(1, "/other")})
	var exists *types.HealthCheckAlreadyExists
	if !errors.As(err, &exists) || exists.ErrorMessage() != "A health check with the CallerReference meridian/prod/trucking/web/eu-west-1/1 already exists with a different configuration." {
		t.Errorf("same reference, other config: %v, want HealthCheckAlreadyExists", err)
	}

	updated, err := c.UpdateHealthCheck(ctx, &route53.UpdateHealthCheckInput{HealthCheckId: aws.String(id), HealthCheckVersion: aws.Int64(1), ResourcePath: aws.String("/ready"), FailureThreshold: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	if v, p, f := aws.ToInt64(updated.HealthCheck.HealthCheckVersion), aws.ToString(updated.HealthCheck.HealthCheckConfig.ResourcePath), aws.ToInt32(updated.HealthCheck.HealthCheckConfig.FailureThreshold); v != 2 || p != "/ready" || f != 3 {
		t.Errorf("updated = version %d path %s threshold %d, want 2 /ready 3", v, p, f)
	}
	_, err = c.UpdateHealthCheck(ctx, &route53.UpdateHealthCheckInput{HealthCheckId: aws.String(id), HealthCheckVersion: aws.Int64(1), Port: aws.Int32(2)})
	var mismatch *types.HealthCheckVersionMismatch
	if !errors.As(err, &mismatch) || mismatch.ErrorMessage() != "The value of HealthCheckVersion in the request (1) doesn't match the current version 2 of the health check." {
		t.Errorf("update with a stale version: %v, want HealthCheckVersionMismatch", err)
	}
	got, err := c.GetHealthCheck(ctx, &route53.GetHealthCheckInput{HealthCheckId: aws.String(id)})
	if err != nil || aws.ToString(got.HealthCheck.HealthCheckConfig.ResourcePath) != "/ready" || aws.ToString(got.HealthCheck.CallerReference) != "meridian/prod/trucking/web/eu-west-1/1" {
		t.Errorf("GetHealthCheck = %+v, %v; want the updated check", got, err)
	}

	// Tags.
	second, err := c.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String("ref-2"), HealthCheckConfig: httpCheck(1, "/")})
	if err != nil {
		t.Fatal(err)
	}
	id2 := aws.ToString(second.HealthCheck.Id)
	if _, err := c.ChangeTagsForResource(ctx, &route53.ChangeTagsForResourceInput{ResourceType: types.TagResourceTypeHealthcheck, ResourceId: aws.String(id),
		AddTags: []types.Tag{{Key: aws.String("meridian/tenant"), Value: aws.String("trucking")}, {Key: aws.String("meridian/region"), Value: aws.String("eu-west-1")}, {Key: aws.String("Name"), Value: aws.String("x")}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangeTagsForResource(ctx, &route53.ChangeTagsForResourceInput{ResourceType: types.TagResourceTypeHealthcheck, ResourceId: aws.String(id), RemoveTagKeys: []string{"Name"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListTagsForResource(ctx, &route53.ListTagsForResourceInput{ResourceType: types.TagResourceTypeHealthcheck, ResourceId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	wantTags := []types.Tag{{Key: aws.String("meridian/region"), Value: aws.String("eu-west-1")}, {Key: aws.String("meridian/tenant"), Value: aws.String("trucking")}}
	if diff := cmp.Diff(wantTags, tags.ResourceTagSet.Tags, cmp.AllowUnexported(types.Tag{})); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	sets, err := c.ListTagsForResources(ctx, &route53.ListTagsForResourcesInput{ResourceType: types.TagResourceTypeHealthcheck, ResourceIds: []string{id, id2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sets.ResourceTagSets) != 2 || len(sets.ResourceTagSets[0].Tags) != 2 || len(sets.ResourceTagSets[1].Tags) != 0 || aws.ToString(sets.ResourceTagSets[1].ResourceId) != id2 {
		t.Errorf("ListTagsForResources = %+v, want two sets, the first with 2 tags", sets.ResourceTagSets)
	}

	// Listing in pages.
	var ids []string
	in := &route53.ListHealthChecksInput{MaxItems: aws.Int32(1)}
	for range 4 {
		out, err := c.ListHealthChecks(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range out.HealthChecks {
			ids = append(ids, aws.ToString(h.Id))
		}
		if !out.IsTruncated {
			break
		}
		in.Marker = out.NextMarker
	}
	if diff := cmp.Diff([]string{id, id2}, ids); diff != "" {
		t.Errorf("ListHealthChecks in pages of 1 (-want +got):\n%s", diff)
	}

	// A record using the check keeps it from being deleted.
	zoneID := srv.CreateZone("fleet.example.com")
	rec := latency("web.fleet.example.com", "eu-west-1", id, "192.0.2.1")
	if _, err := changeRecords(ctx, c, zoneID, chg(types.ChangeActionCreate, rec)); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteHealthCheck(ctx, &route53.DeleteHealthCheckInput{HealthCheckId: aws.String(id)})
	var inUse *types.HealthCheckInUse
	if !errors.As(err, &inUse) || inUse.ErrorMessage() != "Health check "+id+" is still referenced from parent health check(s) or record(s) ([name='web.fleet.example.com.', type='A', set-identifier='eu-west-1'] in zone "+zoneID+")." {
		t.Errorf("deleting a check in use: %v, want HealthCheckInUse", err)
	}
	if _, err := changeRecords(ctx, c, zoneID, chg(types.ChangeActionDelete, rec)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteHealthCheck(ctx, &route53.DeleteHealthCheckInput{HealthCheckId: aws.String(id)}); err != nil {
		t.Fatalf("deleting the check once no record uses it: %v", err)
	}

	var noCheck *types.NoSuchHealthCheck
	for name, call := range map[string]func() error{
		"GetHealthCheck": func() error {
			_, err := c.GetHealthCheck(ctx, &route53.GetHealthCheckInput{HealthCheckId: aws.String(id)})
			return err
		},
		"DeleteHealthCheck": func() error {
			_, err := c.DeleteHealthCheck(ctx, &route53.DeleteHealthCheckInput{HealthCheckId: aws.String(id)})
			return err
		},
		"UpdateHealthCheck": func() error {
			_, err := c.UpdateHealthCheck(ctx, &route53.UpdateHealthCheckInput{HealthCheckId: aws.String(id), Port: aws.Int32(2)})
			return err
		},
		"GetHealthCheckStatus": func() error {
			_, err := c.GetHealthCheckStatus(ctx, &route53.GetHealthCheckStatusInput{HealthCheckId: aws.String(id)})
			return err
		},
		"ListTagsForResource": func() error {
			_, err := c.ListTagsForResource(ctx, &route53.ListTagsForResourceInput{ResourceType: types.TagResourceTypeHealthcheck, ResourceId: aws.String(id)})
			return err
		},
	} {
		if err := call(); !errors.As(err, &noCheck) || noCheck.ErrorMessage() != "No health check exists with the specified ID "+id {
			t.Errorf("%s of a deleted check: %v, want NoSuchHealthCheck", name, err)
		}
	}
	_, err = c.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String("meridian/prod/trucking/web/eu-west-1/1"), HealthCheckConfig: httpCheck(1, "/ready")})
	if !errors.As(err, &exists) {
		t.Errorf("reusing a deleted check's reference: %v, want HealthCheckAlreadyExists", err)
	}
}

func TestProbeTypes(t *testing.T) {
	srv, c := newServer(t, Options{ProbeScale: 0.01, RateScale: 100})
	ctx := context.Background()
	tlsTarget := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "web.trucking.example.com:"+portOf(t, r.Context().Value(http.LocalAddrContextKey).(net.Addr).String()) {
			http.Error(w, "wrong host "+r.Host, http.StatusMisdirectedRequest)
			return
		}
		_, _ = w.Write([]byte("status: ready"))
	}))
	defer tlsTarget.Close()
	port := int32(mustAtoi(t, portOf(t, tlsTarget.Listener.Addr().String())))
	cfg := func(typ types.HealthCheckType, search string) *types.HealthCheckConfig {
		return &types.HealthCheckConfig{Type: typ, IPAddress: aws.String("127.0.0.1"), FullyQualifiedDomainName: aws.String("web.trucking.example.com"),
			Port: aws.Int32(port), ResourcePath: aws.String("/"), SearchString: aws.String(search), RequestInterval: aws.Int32(10), FailureThreshold: aws.Int32(1)}
	}
	tests := []struct {
		name        string
		config      *types.HealthCheckConfig
		wantHealthy bool
	}{
		{"HTTPS with an unverified certificate and the FQDN as Host", cfg(types.HealthCheckTypeHttps, ""), true},
		{"HTTPS_STR_MATCH finding the string", cfg(types.HealthCheckTypeHttpsStrMatch, "ready"), true},
		{"HTTPS_STR_MATCH missing the string", cfg(types.HealthCheckTypeHttpsStrMatch, "draining"), false},
		{"HTTP against a TLS port", cfg(types.HealthCheckTypeHttp, ""), false},
		{"TCP", cfg(types.HealthCheckTypeTcp, ""), true},
		{"TCP to a closed port", &types.HealthCheckConfig{Type: types.HealthCheckTypeTcp, IPAddress: aws.String("127.0.0.1"), Port: aws.Int32(1), RequestInterval: aws.Int32(10), FailureThreshold: aws.Int32(1)}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String(strconv.Itoa(i)), HealthCheckConfig: tt.config})
			if err != nil {
				t.Fatal(err)
			}
			id := aws.ToString(out.HealthCheck.Id)
			waitFor(t, "a probe result", 3*time.Second, func() bool {
				st, err := c.GetHealthCheckStatus(ctx, &route53.GetHealthCheckStatusInput{HealthCheckId: aws.String(id)})
				if err != nil {
					t.Fatal(err)
				}
				return !strings.HasSuffix(aws.ToString(st.HealthCheckObservations[0].StatusReport.Status), "no data yet")
			})
			time.Sleep(50 * time.Millisecond)
			if h, _ := srv.Healthy(id); h != tt.wantHealthy {
				st, _ := c.GetHealthCheckStatus(ctx, &route53.GetHealthCheckStatusInput{HealthCheckId: aws.String(id)})
				t.Errorf("healthy = %v, want %v (status %q)", h, tt.wantHealthy, aws.ToString(st.HealthCheckObservations[0].StatusReport.Status))
			}
		})
	}
}

func portOf(t *testing.T, addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
