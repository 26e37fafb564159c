package fleet

import (
	"errors"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// encrypted is a secrets file with the structure SOPS writes (the loader reads
// structure only, never values).
func encrypted(body string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte(body + "sops:\n  mac: ENC[AES256_GCM,data:def,type:str]\n  version: 3.13.3\n")}
}

func TestSecretsLayers(t *testing.T) {
	fsys := validFleet()
	fsys[FleetSecretsFile] = encrypted("layer: ENC[AES256_GCM,data:a,type:str]\n")
	fsys["regions/eu-west-2.secrets.sops.yaml"] = encrypted("layer: ENC[AES256_GCM,data:b,type:str]\n")
	fsys["tenants/trucking.eu-west-2.secrets.sops.yaml"] = encrypted("web:\n  layer: ENC[AES256_GCM,data:c,type:str]\n")
	m, err := Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if m.Fleet.SecretsFile != FleetSecretsFile || m.Region("eu-west-2").SecretsFile != "regions/eu-west-2.secrets.sops.yaml" ||
		m.Tenant("trucking").RegionSecretsFiles["eu-west-2"] != "tenants/trucking.eu-west-2.secrets.sops.yaml" {
		t.Fatalf("secrets files not found: fleet %q, region %q, tenant × region %v", m.Fleet.SecretsFile, m.Region("eu-west-2").SecretsFile, m.Tenant("trucking").RegionSecretsFiles)
	}

	var p Placement
	for _, q := range m.Placements() {
		if q.ID().String() == "billing/us-east-1/web" {
			p = q
		}
	}
	// Each secret sits at its place: above its own layer's values, below the next
	// layer's.
	tests := []struct {
		name    string
		secrets Secrets
		want    any
	}{
		{name: "no secrets: the region's values win", want: "region"},
		{name: "a fleet secret is below the region's values", secrets: Secrets{Fleet: map[string]any{"layer": "fleet-secret", "only": 1}}, want: "region"},
		{name: "a region secret is above the region's values", secrets: Secrets{Region: map[string]any{"layer": "region-secret"}}, want: "region-secret"},
		{name: "the tenant × region secret is last", secrets: Secrets{Tenant: map[string]any{"layer": "t"}, TenantRegion: map[string]any{"layer": "tr"}, Region: map[string]any{"layer": "r"}}, want: "tr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.ValuesWith(tt.secrets)
			if got["layer"] != tt.want {
				t.Errorf("layer = %v, want %v", got["layer"], tt.want)
			}
			if tt.secrets.Fleet != nil && got["only"] != 1 {
				t.Errorf("a fleet secret no other layer sets is lost: %v", got)
			}
		})
	}
	if diff := cmp.Diff(p.Values, p.ValuesWith(Secrets{})); diff != "" {
		t.Errorf("Values differs from ValuesWith(no secrets) (-Values +ValuesWith):\n%s", diff)
	}
}

func TestSecretsFilesErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]*fstest.MapFile
		want  []string
	}{{
		name:  "a region file of no region",
		files: map[string]*fstest.MapFile{"regions/mars-1.secrets.sops.yaml": encrypted("a: ENC[x]\n")},
		want:  []string{`regions/mars-1.secrets.sops.yaml: no region is named "mars-1"; name the file after a region's metadata.name or remove it`},
	}, {
		name:  "a tenant × region file of a region the tenant does not run in",
		files: map[string]*fstest.MapFile{"tenants/billing.eu-west-2.secrets.sops.yaml": encrypted("web:\n  a: ENC[x]\n")},
		want:  []string{`tenants/billing.eu-west-2.secrets.sops.yaml: tenant "billing" does not run in region "eu-west-2"; name the file tenants/billing.<region>.secrets.sops.yaml after one of its spec.regions or remove it`},
	}, {
		name:  "a tenant × region file with an app that does not run there",
		files: map[string]*fstest.MapFile{"tenants/trucking.us-east-1.secrets.sops.yaml": encrypted("api:\n  a: ENC[x]\n")},
		want:  []string{`tenants/trucking.us-east-1.secrets.sops.yaml:1: api: tenant "trucking" runs no app "api" in region "us-east-1"; top-level keys of this file are the names of the tenant's apps there`},
	}, {
		name:  "a fleet secrets file that is not encrypted",
		files: map[string]*fstest.MapFile{FleetSecretsFile: {Data: []byte("password: hunter22\n")}},
		want:  []string{"fleet.secrets.sops.yaml:1: is not encrypted (no sops section); encrypt it with `sops --encrypt --in-place fleet.secrets.sops.yaml` before committing, and rotate any secret it exposed"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := validFleet()
			for name, f := range tt.files {
				fsys[name] = f
			}
			_, err := Load(fsys)
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Load error = %v, want an ErrorList", err)
			}
			var got []string
			for _, e := range list {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
