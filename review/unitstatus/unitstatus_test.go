package unitstatus

import (
	"fmt"
	"strings"
	"testing"
	"time"

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

// TestNewSelection turns the flags into the query the daemon filters by
// (status.FilterOf, tested in reconciler/status, reads it).
func TestNewSelection(t *testing.T) {
	tests := []struct {
		name string
		o    options
		want string
		err  string
	}{
		{name: "all", o: options{}, want: ""},
		{name: "two tenants, blanks", o: options{tenants: []string{" acme", "trucking", ""}}, want: "tenant=acme%2Ctrucking"},
		{name: "region and app", o: options{regions: []string{"us-east-1"}, apps: []string{"portal"}}, want: "app=portal&region=us-east-1"},
		{name: "state any case", o: options{states: []string{"failed", "PROGRESSING"}}, want: "state=Failed%2CProgressing"},
		{name: "kinds", o: options{kinds: []string{"namespace", "addon"}}, want: "kind=namespace%2Caddon"},
		{name: "no such state", o: options{states: []string{"Broken"}}, err: "--state Broken: no such state"},
		{name: "no such kind", o: options{kinds: []string{"tenant"}}, err: "--kind tenant: no such kind of unit; use placement, namespace or addon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewSelection(tt.o.tenants, tt.o.regions, tt.o.apps, tt.o.states, tt.o.kinds)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v; want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Query().Encode(); got != tt.want {
				t.Errorf("query = %q; want %q", got, tt.want)
			}
		})
	}
}

// TestKnown refuses a name the daemon's summary does not list, naming those it
// does; the addons row is a tenant name.
func TestKnown(t *testing.T) {
	sum := &status.Summary{Tenants: []string{status.AddonsRow, "acme", "trucking"}, Columns: []string{"us-east-1"}, Apps: []string{"api", "platform", "portal"}}
	for _, tt := range []struct {
		f    status.Filter
		want string
	}{
		{status.Filter{Tenants: []string{"trucking", status.AddonsRow}, Regions: []string{"us-east-1"}, Apps: []string{"platform"}}, ""},
		{status.Filter{Tenants: []string{"truking"}}, "--tenant truking: the daemon knows no such tenant (it knows (addons), acme, trucking)"},
		{status.Filter{Regions: []string{"eu-west-2"}}, "--region eu-west-2: the daemon knows no such region (it knows us-east-1)"},
		{status.Filter{Apps: []string{"web"}}, "--app web: the daemon knows no such app (it knows api, platform, portal)"},
	} {
		err := Known(sum, tt.f)
		if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
			t.Errorf("Known(%+v) = %v; want %q", tt.f, err, tt.want)
		}
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
