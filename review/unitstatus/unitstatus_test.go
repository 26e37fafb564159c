package unitstatus

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/reconciler/status"
)

// options are the filters as meridian status's flags give them.
type options struct {
	tenants, regions, apps, states, kinds []string
}

func TestURL(t *testing.T) {
	tests := []struct{ server, want string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/api/v1/status"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/api/v1/status"},
		{"localhost:8080", "http://localhost:8080/api/v1/status"},
		{"https://meridian.example.internal", "https://meridian.example.internal/api/v1/status"},
		{"https://example.internal/meridian/?x=1#top", "https://example.internal/meridian/api/v1/status"},
	}
	for _, tt := range tests {
		got, err := URL(tt.server)
		if err != nil || got != tt.want {
			t.Errorf("URL(%q) = %q, %v; want %q", tt.server, got, err, tt.want)
		}
	}
}

func TestFilter(t *testing.T) {
	units := []status.Placement{
		{Tenant: "trucking", Region: "us-east-1", State: status.Ready},
		{Tenant: "trucking", Region: "us-east-1", App: "portal", State: status.Failed},
		{Tenant: "trucking", Region: "eu-west-2", App: "portal", State: status.Ready},
		{Tenant: "acme", Region: "us-east-1", App: "api", State: status.Progressing},
		{Region: "us-east-1", Addon: "platform", State: status.Ready},
	}
	name := func(p status.Placement) string {
		return strings.Join([]string{p.Tenant, p.Region, App(p)}, "/")
	}
	tests := []struct {
		name string
		o    options
		want []string
	}{
		{"all", options{}, []string{"trucking/us-east-1/", "trucking/us-east-1/portal", "trucking/eu-west-2/portal", "acme/us-east-1/api", "/us-east-1/platform"}},
		{"tenant", options{tenants: []string{"trucking"}}, []string{"trucking/us-east-1/", "trucking/us-east-1/portal", "trucking/eu-west-2/portal"}},
		{"two tenants, blanks", options{tenants: []string{" acme", "trucking", ""}}, []string{"trucking/us-east-1/", "trucking/us-east-1/portal", "trucking/eu-west-2/portal", "acme/us-east-1/api"}},
		{"region and app", options{regions: []string{"us-east-1"}, apps: []string{"portal"}}, []string{"trucking/us-east-1/portal"}},
		{"addon by app", options{apps: []string{"platform"}}, []string{"/us-east-1/platform"}},
		{"state any case", options{states: []string{"failed", "PROGRESSING"}}, []string{"trucking/us-east-1/portal", "acme/us-east-1/api"}},
		{"placements", options{kinds: []string{"placement"}}, []string{"trucking/us-east-1/portal", "trucking/eu-west-2/portal", "acme/us-east-1/api"}},
		{"namespaces and addons", options{kinds: []string{"namespace", "addon"}}, []string{"trucking/us-east-1/", "/us-east-1/platform"}},
		{"nothing", options{tenants: []string{"acme"}, states: []string{"Ready"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := NewSelection(tt.o.tenants, tt.o.regions, tt.o.apps, tt.o.states, tt.o.kinds)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range sel.Filter(units) {
				got = append(got, name(p))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("selected (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCells(t *testing.T) {
	if got := truncate("Deployment/trucking/portal: Available=False", 20); got != "Deployment/trucking…" || len([]rune(got)) != 20 {
		t.Errorf("truncate = %q", got)
	}
	if got := truncate("héllo", 5); got != "héllo" {
		t.Errorf("truncate of a short string = %q", got)
	}
	if got := oneLine("a\n  b\tc "); got != "a b c" {
		t.Errorf("oneLine = %q", got)
	}
	if got := dnsCell([]status.DNSEndpoint{{Healthy: true}, {}}); got != "1/2" {
		t.Errorf("dnsCell = %q", got)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := now.Add(-90 * time.Second)
	if got := sinceCell(now, &at); got != "1m30s ago" {
		t.Errorf("sinceCell = %q", got)
	}
	if got := sinceCell(now, nil); got != "never" {
		t.Errorf("sinceCell(nil) = %q", got)
	}
}
