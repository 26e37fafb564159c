package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/fleetgen"
	"meridian.dev/meridian/render"
)

func TestFluxBuildModule(t *testing.T) {
	ctl := fluxController{"kustomize-controller", "github.com/fluxcd/kustomize-controller", "v1.9.6"}
	for _, tc := range []struct {
		name, gomod, want, err string
	}{{
		name: "module replacements kept, the api directory dropped",
		gomod: `module github.com/fluxcd/kustomize-controller

go 1.26.0

replace github.com/fluxcd/kustomize-controller/api => ./api

// a comment
replace example.com/digest => example.com/digest v1.0.1-0.2022 // pinned

require (
	example.com/a v1.0.0
)

replace (
	sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1
	example.com/old v1.2.3 => example.com/new v1.2.4
)
`,
		want: `module fluxbuild/kustomize-controller

go 1.26.0

require github.com/fluxcd/kustomize-controller v1.9.6

replace (
	example.com/digest => example.com/digest v1.0.1-0.2022
	sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1
	example.com/old v1.2.3 => example.com/new v1.2.4
)
`,
	}, {
		name:  "toolchain kept, no replacements",
		gomod: "module m\n\ngo 1.27.0\n\ntoolchain go1.27.4\n\nreplace m/api => ./api\n",
		want:  "module fluxbuild/kustomize-controller\n\ngo 1.27.0\n\ntoolchain go1.27.4\n\nrequire github.com/fluxcd/kustomize-controller v1.9.6\n",
	}, {
		name:  "no go directive",
		gomod: "module m\n",
		err:   "no go directive",
	}, {
		name:  "unreadable replace",
		gomod: "module m\n\ngo 1.26\n\nreplace a b c\n",
		err:   "go.mod:5: cannot read replace directive",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fluxBuildModule(ctl, []byte(tc.gomod))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("go.mod (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFluxFleet(t *testing.T) {
	dir := t.TempDir()
	if err := fleetgen.Write(dir, fleetgen.Spec{Tenants: 2, Regions: 3, Apps: 4, Example: "../fleet-example", Secrets: true}); err != nil {
		t.Fatal(err)
	}
	m, err := fleet.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "tenant-001", "creationTimestamp": nil}}}
	units := []*render.Unit{
		{Tenant: "tenant-001", Region: "eu-west-2", Objects: []*unstructured.Unstructured{ns}},
		{Tenant: "tenant-001", Region: "eu-west-2", App: "api"}, // not a namespace unit
	}
	secrets := map[string]map[string]any{"tenant-000": {"portal": map[string]any{"database": map[string]any{"password": "s3cret"}}}}
	ff, err := fluxFleet(m, zone, units, secrets)
	if err != nil {
		t.Fatal(err)
	}
	// 2 tenants × 3 regions × (portal, portal-1, worker) Helm, × api Kustomize.
	if len(ff.HelmReleases) != 18 {
		t.Errorf("%d HelmReleases, want 18", len(ff.HelmReleases))
	}
	wantKs := []string{"tenant-000-secrets", "tenant-001-eu-west-2-namespace"}
	for _, tenant := range []string{"tenant-000", "tenant-001"} {
		for i := range 3 {
			wantKs = append(wantKs, tenant+"-"+fleetgen.RegionName(i)+"-api")
		}
	}
	got := append([]string(nil), ff.Kustomizations...)
	if diff := cmp.Diff(sorted(wantKs), got); diff != "" {
		t.Errorf("Kustomizations (-want +got):\n%s", diff)
	}

	objs := map[string]map[string]any{}
	for _, name := range []string{"flux/fleet/tenant-000.yaml", "flux/fleet/tenant-001.yaml", "flux/fleet/charts.yaml"} {
		data, ok := ff.Files[name]
		if !ok {
			t.Fatalf("no %s; files: %v", name, keys(ff.Files))
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			var o map[string]any
			if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			md := o["metadata"].(map[string]any)
			if md["namespace"] != fluxNamespace {
				t.Errorf("%s %s in namespace %v, want %s", o["kind"], md["name"], md["namespace"], fluxNamespace)
			}
			objs[o["kind"].(string)+"/"+md["name"].(string)] = o
		}
	}
	if len(objs) != 18+len(wantKs)+3 {
		t.Errorf("%d objects in flux/fleet, want %d (and the 3 charts)", len(objs), 18+len(wantKs)+3)
	}
	for _, p := range m.Placements() {
		id := p.ID()
		if p.App.Spec.Helm == nil {
			k := objs["Kustomization/"+fluxName(id)]["spec"].(map[string]any)
			if k["targetNamespace"] != id.Tenant || k["path"] != "./apps/api/base" || k["wait"] != true {
				t.Errorf("%s: Kustomization spec %v", id, k)
			}
			if diff := cmp.Diff([]any{map[string]any{"name": id.Tenant + "-" + id.Region + "-namespace"}}, k["dependsOn"]); diff != "" {
				t.Errorf("%s: dependsOn (-want +got):\n%s", id, diff)
			}
			continue
		}
		hr := objs["HelmRelease/"+fluxName(id)]["spec"].(map[string]any)
		// The same values as Meridian's, through a YAML round trip.
		var want map[string]any
		data, _ := yaml.Marshal(render.PlacementValues(p, zone))
		if err := yaml.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, hr["values"]); diff != "" {
			t.Errorf("%s: values (-want +got):\n%s", id, diff)
		}
		if got := hr["kubeConfig"].(map[string]any)["secretRef"].(map[string]any)["name"]; got != "kubeconfig-"+id.Region {
			t.Errorf("%s: kubeconfig Secret %v", id, got)
		}
		if hr["releaseName"] != id.App || hr["targetNamespace"] != id.Tenant || hr["storageNamespace"] != id.Tenant {
			t.Errorf("%s: release %v in %v (storage %v)", id, hr["releaseName"], hr["targetNamespace"], hr["storageNamespace"])
		}
		_, from := hr["valuesFrom"]
		if wantFrom := id.Tenant == "tenant-000" && id.App == "portal"; from != wantFrom {
			t.Errorf("%s: valuesFrom %v, want %v", id, hr["valuesFrom"], wantFrom)
		}
	}
	chart := objs["HelmChart/portal-1"]["spec"].(map[string]any)
	if chart["chart"] != "./apps/portal-1/chart" {
		t.Errorf("portal-1 chart from %v", chart["chart"])
	}
	if !strings.Contains(string(ff.Files["flux/namespaces/tenant-001/eu-west-2/objects.yaml"]), "kind: Namespace\nmetadata:\n  name: tenant-001\n") {
		t.Errorf("namespace objects:\n%s", ff.Files["flux/namespaces/tenant-001/eu-west-2/objects.yaml"])
	}
	if _, ok := ff.Files["flux/namespaces/tenant-001/eu-west-2/api/objects.yaml"]; ok {
		t.Error("a placement was written as namespace objects")
	}
	secret := string(ff.ValuesSecrets["tenant-000"])
	for _, want := range []string{"name: tenant-000-values", "namespace: flux-system", "portal.yaml: |\n    database:\n      password: s3cret\n"} {
		if !strings.Contains(secret, want) {
			t.Errorf("values Secret lacks %q:\n%s", want, secret)
		}
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestFluxTable(t *testing.T) {
	s := &Size{
		Meridian:    &Side{CreatedSeconds: 1, ReadySeconds: 2, AppliedSeconds: 1.5, CPUSeconds: 0.5, PeakRSSMiB: 100, ClientRequests: map[string]int{"APPLY": 10}},
		NoOpCommit:  &Cycle{CPUSeconds: 0.1, ClientRequests: map[string]int{}},
		Incremental: []Incremental{{AppliedSeconds: 0.2}, {AppliedSeconds: 0.4}, {AppliedSeconds: 0.3}},
		Flux: &FluxSide{
			Versions:       map[string]string{"source-controller": "v1.9.0", "helm-controller": "v1.4.3"},
			CreatedSeconds: 5, ReadySeconds: 8, FluxReadySeconds: 9, CPUSeconds: 4, PeakRSSSumMiB: 300,
			ClientRequests: map[string]int{"APPLY": 20, "GET": 10}, ManagementRequests: map[string]int{"WATCH": 7},
			NoOpCommit:  &FluxCycle{CPUSeconds: 1, ClientRequests: map[string]int{"DRYRUN-APPLY": 12}, KubernetesWrites: 0},
			Incremental: []Incremental{{AppliedSeconds: 3}},
		},
	}
	var b strings.Builder
	writeFluxTable(&b, s)
	// Columns are aligned with spaces; compare with every run of them as one.
	got := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{
		"Flux (source-controller v1.9.0, helm-controller v1.4.3)",
		"cold: every Deployment created 1.00 s 5.00 s 5.0×",
		"cold: every Deployment ready 2.00 s 8.00 s 4.0×",
		"cold: requests to the regions 10 30 3.0×",
		"no-op commit: requests to the regions 0 12 —",
		"one-tenant change: trigger to applied (median) 0.30 s 3.00 s 10.0×",
		"peak RSS (Flux: sum of the controllers') 100 MiB 300 MiB 3.0×",
		"Flux no-op commit: region requests DRYRUN-APPLY 12; management requests none",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	writeFluxTable(&b, &Size{Meridian: s.Meridian})
	if b.Len() != 0 {
		t.Errorf("a table without Flux:\n%s", b.String())
	}
}

func TestWriteFluxTree(t *testing.T) {
	ctx := context.Background()
	f, dir := oneTenantFleet(t)
	keyFile := "../fleet-example/demo-age-key.txt"
	ff, err := writeFluxTree(ctx, f, keyFile, filepath.Join(dir, "charts"), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ff.HelmReleases) != 9 || len(ff.Kustomizations) != 3+3+1 {
		t.Errorf("%d HelmReleases, %d Kustomizations; want 9, 7 (api and namespace in 3 regions, secrets)", len(ff.HelmReleases), len(ff.Kustomizations))
	}
	ns, err := os.ReadFile(filepath.Join(f.Dir, "flux", "namespaces", "tenant-000", "eu-west-2", "objects.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"Namespace", "ResourceQuota", "NetworkPolicy", "ServiceAccount", "RoleBinding"} {
		if !strings.Contains(string(ns), "kind: "+kind+"\n") {
			t.Errorf("namespace objects lack a %s:\n%s", kind, ns)
		}
	}
	enc, err := os.ReadFile(filepath.Join(f.Dir, "flux", "secrets", "tenant-000", "values.sops.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Secret", "name: tenant-000-values", "encrypted_regex: ^(data|stringData)$", "portal.yaml: ENC["} {
		if !strings.Contains(string(enc), want) {
			t.Errorf("values Secret lacks %q:\n%s", want, enc)
		}
	}
	// The values written encrypted are the tenant's decrypted secrets.
	if !strings.Contains(string(ff.ValuesSecrets["tenant-000"]), "portal.yaml: |\n    database:\n      password: ") {
		t.Errorf("plain values Secret:\n%s", ff.ValuesSecrets["tenant-000"])
	}
	// A second write without secrets leaves the encrypted file as it was.
	if _, err := writeFluxTree(ctx, f, keyFile, filepath.Join(dir, "charts"), false); err != nil {
		t.Fatal(err)
	}
	again, err := os.ReadFile(filepath.Join(f.Dir, "flux", "secrets", "tenant-000", "values.sops.yaml"))
	if err != nil || string(again) != string(enc) {
		t.Errorf("the encrypted values changed (%v)", err)
	}
	// Meridian still loads the fleet with flux/ in it; on another commit the
	// namespace objects are the same (no commit in them).
	if err := f.Commit(ctx, "flux"); err != nil {
		t.Fatal(err)
	}
	if _, err := writeFluxTree(ctx, f, keyFile, filepath.Join(dir, "charts"), false); err != nil {
		t.Fatal(err)
	}
	nsAgain, err := os.ReadFile(filepath.Join(f.Dir, "flux", "namespaces", "tenant-000", "eu-west-2", "objects.yaml"))
	if err != nil || string(nsAgain) != string(ns) {
		t.Errorf("namespace objects changed with the commit (%v):\n%s", err, cmp.Diff(string(ns), string(nsAgain)))
	}
	if strings.Contains(string(ns), "meridian.dev/revision") || strings.Contains(string(ns), "managed-by: meridian") {
		t.Errorf("Meridian's bookkeeping in Flux's files:\n%s", ns)
	}
}

func TestPeerFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		peer string
		err  string
	}{
		{[]string{"-peer", "flux"}, "flux", ""},
		{nil, "", ""},
		{[]string{"-peer", "argo"}, "", `unknown peer "argo"`},
		{[]string{"-peer", "flux", "-scenarios", "render"}, "", "add cold"},
	} {
		o, err := parseFlags(tc.args, io.Discard)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
		} else if o.peer != tc.peer {
			t.Errorf("%v: peer %q, want %q", tc.args, o.peer, tc.peer)
		}
	}
}
