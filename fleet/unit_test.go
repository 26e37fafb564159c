package fleet

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseUnitID(t *testing.T) {
	tests := []struct {
		text    string
		want    UnitID
		wantErr string
	}{
		{text: "t/r", want: UnitID{Tenant: "t", Region: "r"}},
		{text: "t/r/a", want: UnitID{Tenant: "t", Region: "r", App: "a"}},
		{text: "addon:r/ingress", want: AddonUnit("r", "ingress")},
		{text: "t", wantErr: `unit "t": want tenant/region, tenant/region/app or addon:region/name`},
		{text: "t/r/a/b", wantErr: `unit "t/r/a/b": want tenant/region, tenant/region/app or addon:region/name`},
		{text: "addon:r", wantErr: `unit "addon:r": want addon:region/name`},
		{text: "addon:r/a/b", wantErr: `unit "addon:r/a/b": want addon:region/name`},
		{text: "addon:r/A", wantErr: `unit "addon:r/A": "A" is not a fleet name (a DNS-1123 label)`},
		{text: "addon/r/a", want: UnitID{Tenant: "addon", Region: "r", App: "a"}}, // a tenant may be named addon
		{text: "t//a", wantErr: `unit "t//a": "" is not a fleet name (a DNS-1123 label)`},
		{text: "T/r", wantErr: `unit "T/r": "T" is not a fleet name (a DNS-1123 label)`},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := ParseUnitID(tt.text)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Errorf("error = %q, want %q", gotErr, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseUnitID(%q) = %#v, want %#v", tt.text, got, tt.want)
			}
			if err == nil && got.String() != tt.text {
				t.Errorf("String() = %q, want the text it was parsed from, %q", got.String(), tt.text)
			}
		})
	}
}

func TestUnitIDNamespace(t *testing.T) {
	ns, app := NamespaceUnit("t", "r"), UnitID{Tenant: "t", Region: "r", App: "a"}
	if !ns.IsNamespace() || app.IsNamespace() {
		t.Errorf("IsNamespace: %s %t, %s %t; want true, false", ns, ns.IsNamespace(), app, app.IsNamespace())
	}
	if app.Namespace() != ns || ns.Namespace() != ns {
		t.Errorf("Namespace() of %s = %s and of %s = %s, want %s for both", app, app.Namespace(), ns, ns.Namespace(), ns)
	}
	addon := AddonUnit("r", "ingress")
	if !addon.IsAddon() || addon.IsNamespace() || ns.IsAddon() || app.IsAddon() {
		t.Errorf("IsAddon/IsNamespace of %s: %t/%t, want true/false; IsAddon of %s, %s: %t, %t, want false", addon, addon.IsAddon(), addon.IsNamespace(), ns, app, ns.IsAddon(), app.IsAddon())
	}
	if !addon.Namespace().IsZero() {
		t.Errorf("an addon unit has no namespace unit, got %s", addon.Namespace())
	}
	if addon.Name() != "ingress" || app.Name() != "a" || ns.Name() != "" {
		t.Errorf("Name() = %q, %q, %q; want ingress, a and empty", addon.Name(), app.Name(), ns.Name())
	}
	if !(UnitID{}).IsZero() || ns.IsZero() {
		t.Error("IsZero is true only for the empty ID")
	}
}

func TestUnitIDCompare(t *testing.T) {
	got := []UnitID{
		{Tenant: "b", Region: "r", App: "a"},
		{Tenant: "a-b", Region: "r"},
		{Tenant: "a", Region: "r", App: "z"},
		{Tenant: "a", Region: "r"},
		{Tenant: "a", Region: "q", App: "a"},
		AddonUnit("z", "a"),
		AddonUnit("a", "b"),
		AddonUnit("a", "a"),
	}
	slices.SortFunc(got, UnitID.Compare)
	want := []UnitID{
		AddonUnit("a", "a"), // addons before every tenant's unit
		AddonUnit("a", "b"),
		AddonUnit("z", "a"),
		{Tenant: "a", Region: "q", App: "a"},
		{Tenant: "a", Region: "r"}, // a namespace unit before its region's placements
		{Tenant: "a", Region: "r", App: "z"},
		{Tenant: "a-b", Region: "r"},
		{Tenant: "b", Region: "r", App: "a"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sorted (-want +got):\n%s", diff)
	}
}

func TestUnitIDJSON(t *testing.T) {
	in := map[UnitID]UnitID{NamespaceUnit("t", "r"): {Tenant: "t", Region: "r", App: "a"}, AddonUnit("r", "x"): AddonUnit("r", "y")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"addon:r/x":"addon:r/y","t/r":"t/r/a"}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var out map[UnitID]UnitID
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	var bad UnitID
	if err := json.Unmarshal([]byte(`"t/r/a/b"`), &bad); err == nil {
		t.Error("a malformed unit in JSON was accepted")
	}
}
