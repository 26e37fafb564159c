package dns

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/internal/testenv/route53test"
)

// isolateAWS gives the SDK's default chain test credentials and nothing else
// from the environment: no shared files, no instance role, and no
// AWS_CA_BUNDLE, which may be set on these machines and which the SDK cannot
// add to a client that trusts a CA file.
func isolateAWS(t *testing.T) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CA_BUNDLE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
}

// TestNewRoute53Client reaches the configured endpoint through the SDK's
// default chain and tells the observer of every attempt, throttled ones too.
func TestNewRoute53Client(t *testing.T) {
	isolateAWS(t)
	srv := route53test.NewServer(route53test.Options{})
	t.Cleanup(srv.Close)
	srv.CreateZone("fleet.example.com")
	var observed []string
	client, err := NewRoute53Client(t.Context(), ClientOptions{Region: "us-east-1", Endpoint: srv.URL, Observe: func(op string, throttled bool) {
		observed = append(observed, fmt.Sprintf("%s throttled=%t", op, throttled))
	}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.ListHostedZones(t.Context(), &route53.ListHostedZonesInput{})
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext("ListHostedZones", "Throttling", 1)
	if _, err := client.ListHostedZones(t.Context(), &route53.ListHostedZonesInput{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ListHostedZones throttled=false", "ListHostedZones throttled=true", "ListHostedZones throttled=false"}, observed); diff != "" {
		t.Errorf("observed requests (-want +got):\n%s", diff)
	}
	if len(out.HostedZones) != 1 || aws.ToString(out.HostedZones[0].Name) != "fleet.example.com." {
		t.Errorf("zones through the configured endpoint: %+v", out.HostedZones)
	}
}

// TestNewRoute53ClientCAFile trusts an endpoint's private certificate authority
// only through CAFile, and names a CA file it cannot use.
func TestNewRoute53ClientCAFile(t *testing.T) {
	isolateAWS(t)
	srv := route53test.NewServer(route53test.Options{TLS: true})
	t.Cleanup(srv.Close)
	srv.CreateZone("fleet.example.com")
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: resp.TLS.PeerCertificates[0].Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, caFile string
		wantErr      string // from NewRoute53Client
		wantCallErr  string // from a request
	}{
		{name: "the server's CA", caFile: caFile},
		{name: "no CA file", wantCallErr: "certificate"},
		{name: "a missing CA file", caFile: filepath.Join(dir, "missing.pem"), wantErr: "CA file: open " + filepath.Join(dir, "missing.pem")},
		{name: "a CA file without a certificate", caFile: notPEM, wantErr: "CA file " + notPEM + ": no PEM certificate in it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, err := NewRoute53Client(t.Context(), ClientOptions{Region: "us-east-1", Endpoint: srv.URL, CAFile: tt.caFile})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = client.ListHostedZones(t.Context(), &route53.ListHostedZonesInput{}, func(o *route53.Options) { o.RetryMaxAttempts = 1 })
			switch {
			case tt.wantCallErr == "" && err != nil:
				t.Errorf("ListHostedZones: %v", err)
			case tt.wantCallErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantCallErr)):
				t.Errorf("ListHostedZones error = %v, want it to contain %q", err, tt.wantCallErr)
			}
		})
	}
}
