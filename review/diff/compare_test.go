package diff

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/render"
)

const password = "hunter2-but-longer-9f3e" // a decrypted value, as far as these tests go

func object(kind, name string, fields map[string]any) *unstructured.Unstructured {
	o := &unstructured.Unstructured{Object: map[string]any{}}
	for k, v := range fields {
		o.Object[k] = v
	}
	o.SetAPIVersion("v1")
	o.SetKind(kind)
	o.SetNamespace("trucking")
	o.SetName(name)
	return o
}

func withRevision(o *unstructured.Unstructured, rev string) *unstructured.Unstructured {
	o = o.DeepCopy()
	o.SetAnnotations(map[string]string{render.AnnotationRevision: rev, render.AnnotationPlacement: "trucking/eu-west-2/portal"})
	return o
}

func unit(app, digest string, objects ...*unstructured.Unstructured) *render.Unit {
	return &render.Unit{Tenant: "trucking", Region: "eu-west-2", App: app, Digest: digest, Objects: objects}
}

func side(name string, units ...*render.Unit) Revision {
	return Revision{Name: name, Model: &fleet.Model{Fleet: &fleet.Fleet{}}, Result: &render.Result{Revision: name, Units: units}}
}

// objectSummary is what the table tests compare: unit, object, change, keys.
type objectSummary struct {
	Unit, Ref string
	Change    Change
	Keys      []SecretKey
	HasDiff   bool
}

func summarizeUnits(r *Report) []objectSummary {
	var out []objectSummary
	for _, u := range r.Units {
		for _, o := range u.Objects {
			out = append(out, objectSummary{Unit: u.ID.String() + " " + string(u.Change), Ref: o.Ref, Change: o.Change, Keys: o.SecretKeys, HasDiff: o.Diff != ""})
		}
	}
	return out
}

func TestCompareUnits(t *testing.T) {
	cm := object("ConfigMap", "portal", map[string]any{"data": map[string]any{"mode": "fast"}})
	cmSlow := object("ConfigMap", "portal", map[string]any{"data": map[string]any{"mode": "slow"}})
	secret := object("Secret", "portal-db", map[string]any{"stringData": map[string]any{"password": password, "user": "portal-user"}})
	rotated := object("Secret", "portal-db", map[string]any{"stringData": map[string]any{"password": "rotated-value-1a2b3c", "user": "portal-user"}})
	moved := object("Secret", "portal-db", map[string]any{"data": map[string]any{
		"password": base64.StdEncoding.EncodeToString([]byte(password)), "host": base64.StdEncoding.EncodeToString([]byte("db.internal"))}})

	tests := []struct {
		name       string
		base, head Revision
		want       []objectSummary
	}{{
		name: "a new revision alone changes nothing",
		base: side("r1", unit("portal", "d1", withRevision(cm, "r1"))),
		head: side("r2", unit("portal", "d2", withRevision(cm, "r2"))),
	}, {
		name: "a changed field is a changed object with a diff",
		base: side("r1", unit("portal", "d1", cm)),
		head: side("r2", unit("portal", "d2", cmSlow)),
		want: []objectSummary{{Unit: "trucking/eu-west-2/portal changed", Ref: "ConfigMap/trucking/portal", Change: Changed, HasDiff: true}},
	}, {
		name: "a new unit's objects are added with their YAML",
		base: side("r1"),
		head: side("r2", unit("portal", "d1", cm, secret)),
		want: []objectSummary{
			{Unit: "trucking/eu-west-2/portal added", Ref: "ConfigMap/trucking/portal", Change: Added, HasDiff: true},
			{Unit: "trucking/eu-west-2/portal added", Ref: "Secret/trucking/portal-db", Change: Added, HasDiff: true,
				Keys: []SecretKey{{Key: "password", Change: Added}, {Key: "user", Change: Added}}},
		},
	}, {
		name: "a removed unit's objects are removed without YAML",
		base: side("r1", unit("portal", "d1", cm)),
		head: side("r2"),
		want: []objectSummary{{Unit: "trucking/eu-west-2/portal removed", Ref: "ConfigMap/trucking/portal", Change: Removed}},
	}, {
		name: "a rotated secret value reads changed, with no diff",
		base: side("r1", unit("portal", "d1", secret)),
		head: side("r2", unit("portal", "d2", rotated)),
		want: []objectSummary{{Unit: "trucking/eu-west-2/portal changed", Ref: "Secret/trucking/portal-db", Change: Changed,
			Keys: []SecretKey{{Key: "password", Change: Changed}}}},
	}, {
		name: "a value moved from stringData to data is compared by its content",
		base: side("r1", unit("portal", "d1", secret)),
		head: side("r2", unit("portal", "d2", moved)),
		want: []objectSummary{{Unit: "trucking/eu-west-2/portal changed", Ref: "Secret/trucking/portal-db", Change: Changed, HasDiff: true,
			Keys: []SecretKey{{Key: "host", Change: Added}, {Key: "user", Change: Removed}}}},
	}, {
		name: "equal digests are not compared object by object",
		base: side("r1", unit("portal", "same", cm)),
		head: side("r2", unit("portal", "same", cmSlow)),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Compare(tt.base, tt.head, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summarizeUnits(r)); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
			if r.Changed != (len(tt.want) > 0) {
				t.Errorf("Changed = %v", r.Changed)
			}
			assertNoValue(t, r, password, "rotated-value-1a2b3c", "db.internal")
		})
	}
}

// TestCompareRedactsSecretValuesEverywhere: a Secret's value that a chart also put
// into a ConfigMap is redacted there too, in every format.
func TestCompareRedactsSecretValuesEverywhere(t *testing.T) {
	leaky := object("ConfigMap", "portal", map[string]any{"data": map[string]any{"url": "postgres://portal:" + password + "@db"}})
	secret := object("Secret", "portal-db", map[string]any{"stringData": map[string]any{"password": password}})
	r, err := Compare(side("r1"), side("r2", unit("portal", "d1", leaky, secret)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Units[0].Objects[0].Diff, "postgres://portal:**REDACTED**@db") {
		t.Errorf("ConfigMap diff:\n%s", r.Units[0].Objects[0].Diff)
	}
	assertNoValue(t, r, password)
}

func TestCompareRefusesRenderErrors(t *testing.T) {
	head := side("r2")
	head.Result.Errors = []*render.UnitError{{Unit: fleet.UnitID{Tenant: "trucking", Region: "eu-west-2", App: "portal"}, Err: errors.New("apps/portal/chart/templates/x.yaml: boom")}}
	if _, err := Compare(side("r1"), head, Options{}); !errors.Is(err, ErrRenderFailed) {
		t.Errorf("err = %v, want ErrRenderFailed", err)
	}
}

// assertNoValue fails if any value is in any format of the report.
func assertNoValue(t *testing.T, r *Report, values ...string) {
	t.Helper()
	for _, f := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"text", func(b *bytes.Buffer) error { return Text(b, r) }},
		{"markdown", func(b *bytes.Buffer) error { return Markdown(b, r, 0) }},
		{"json", func(b *bytes.Buffer) error { return JSON(b, r) }},
	} {
		var b bytes.Buffer
		if err := f.write(&b); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
				if strings.Contains(b.String(), form) {
					t.Errorf("%s output holds a secret value", f.name)
				}
			}
		}
	}
}

// TestCompareAdoption: a revision that lets a unit adopt what exists, or stops it,
// shows, even when the unit renders the same objects.
func TestCompareAdoption(t *testing.T) {
	cm := object("ConfigMap", "portal", map[string]any{"data": map[string]any{"mode": "fast"}})
	adopting := func(u *render.Unit) *render.Unit { u.AdoptExisting = true; return u }
	tests := []struct {
		name       string
		base, head Revision
		want       map[string]Change // unit → Adopt
		line       string            // in the text form
	}{{
		name: "a new unit that adopts",
		base: side("r1"),
		head: side("r2", adopting(unit("portal", "d1", cm))),
		want: map[string]Change{"trucking/eu-west-2/portal": Added},
		line: "  + adoptExisting: objects of the unit that exist in a region and that Meridian did not create are taken over, and released (never deleted) when the unit leaves\n",
	}, {
		name: "adoption asked for on an unchanged unit",
		base: side("r1", unit("portal", "d1", cm)),
		head: side("r2", adopting(unit("portal", "d1", cm))),
		want: map[string]Change{"trucking/eu-west-2/portal": Added},
	}, {
		name: "adoption no longer asked for",
		base: side("r1", adopting(unit("portal", "d1", cm))),
		head: side("r2", unit("portal", "d1", cm)),
		want: map[string]Change{"trucking/eu-west-2/portal": Removed},
		line: "  - adoptExisting removed: an object of the unit that exists and that Meridian did not create is refused\n",
	}, {
		name: "a unit that keeps adopting and does not change is not shown",
		base: side("r1", adopting(unit("portal", "d1", cm))),
		head: side("r2", adopting(unit("portal", "d1", cm))),
		want: map[string]Change{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Compare(tt.base, tt.head, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]Change{}
			for _, u := range r.Units {
				got[u.ID.String()] = u.Adopt
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("adoption (-want +got):\n%s", diff)
			}
			if r.Changed != (len(tt.want) > 0) {
				t.Errorf("Changed = %v", r.Changed)
			}
			var b strings.Builder
			if err := Text(&b, r); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tt.line) {
				t.Errorf("text:\n%s\nwant the line %q", b.String(), tt.line)
			}
		})
	}
}
