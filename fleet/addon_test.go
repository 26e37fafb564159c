package fleet

import (
	"errors"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// withAddons is the valid fleet with eu-west-2 labelled and the files given added.
func withAddons(files map[string]string) fstest.MapFS {
	fsys := validFleet()
	fsys["regions/eu-west-2.yaml"] = &fstest.MapFile{Data: []byte(`apiVersion: meridian.dev/v1alpha1
kind: Region
metadata:
  name: eu-west-2
  labels: {tier: canary, cloud: aws}
spec:
  awsRegion: eu-west-2
  cluster:
    kubeconfigContext: eu-west-2
  endpoint:
    type: CNAME
    target: ingress.euw2.example.net
`)}
	if _, ok := files["addons/ingress/addon.yaml"]; ok {
		fsys["addons/ingress/base/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources: []\n")}
	}
	for name, content := range files {
		if content == "" {
			delete(fsys, name)
			continue
		}
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	return fsys
}

const addonHead = "apiVersion: meridian.dev/v1alpha1\nkind: Addon\nmetadata:\n  name: ingress\nspec:\n  kustomize: {path: base}\n  namespace: ingress-nginx\n"

func TestAddonPlacements(t *testing.T) {
	tests := []struct {
		name  string
		extra string // after addonHead
		want  []string
	}{
		{name: "every region by default", want: []string{"addon:eu-west-2/ingress", "addon:us-east-1/ingress"}},
		{name: "a list of regions", extra: "  regions: [us-east-1]\n", want: []string{"addon:us-east-1/ingress"}},
		{name: "region labels", extra: "  regionSelector: {tier: canary}\n", want: []string{"addon:eu-west-2/ingress"}},
		{name: "every label must match", extra: "  regionSelector: {tier: canary, cloud: gcp}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Load(withAddons(map[string]string{"addons/ingress/addon.yaml": addonHead + tt.extra}))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range m.AddonPlacements() {
				got = append(got, p.ID().String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("addon units (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddonValues(t *testing.T) {
	m, err := Load(withAddons(map[string]string{
		"addons/ingress/addon.yaml":    addonHead + "  valuesFiles: [defaults.yaml]\n  values: {layer: addon, replicas: 2}\n  regionValues:\n    eu-west-2: {replicas: 1}\n",
		"addons/ingress/defaults.yaml": "layer: file\nfromFile: true\n",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Values{}
	for _, p := range m.AddonPlacements() {
		got[p.Region.Metadata.Name] = p.Values
	}
	want := map[string]Values{
		// Fleet and region values are for tenants' apps; an addon gets its own only.
		"eu-west-2": {"layer": "addon", "fromFile": true, "replicas": 1},
		"us-east-1": {"layer": "addon", "fromFile": true, "replicas": 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
}

func TestAddonErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{{
		name:  "regions and a selector",
		files: map[string]string{"addons/ingress/addon.yaml": addonHead + "  regions: [us-east-1]\n  regionSelector: {tier: canary}\n"},
		want:  []string{`addons/ingress/addon.yaml:9: spec.regionSelector: is set with spec.regions; select regions by name or by labels, not both`},
	}, {
		name:  "an unknown region",
		files: map[string]string{"addons/ingress/addon.yaml": addonHead + "  regions: [mars-1]\n"},
		want:  []string{`addons/ingress/addon.yaml:8: spec.regions[0]: region "mars-1" does not exist; create regions/mars-1.yaml or fix the name`},
	}, {
		name:  "a tenant's namespace",
		files: map[string]string{"addons/ingress/addon.yaml": addonHead + "  namespaces: [kube-system, trucking]\n"},
		want:  []string{`addons/ingress/addon.yaml:8: spec.namespaces[1]: "trucking" is the namespace of tenant "trucking" (tenants/trucking.yaml); an addon may not write into a tenant's namespace, choose another namespace`},
	}, {
		name:  "Meridian's namespace",
		files: map[string]string{"addons/ingress/addon.yaml": "apiVersion: meridian.dev/v1alpha1\nkind: Addon\nmetadata:\n  name: ingress\nspec:\n  kustomize: {path: base}\n  namespace: meridian-system\n"},
		want:  []string{`addons/ingress/addon.yaml:7: spec.namespace: "meridian-system" is Meridian's own namespace, where it keeps its inventories; an addon may not write into it`},
	}, {
		name:  "values for a region it does not run in",
		files: map[string]string{"addons/ingress/addon.yaml": addonHead + "  regions: [us-east-1]\n  regionValues:\n    eu-west-2: {a: 1}\n"},
		want:  []string{`addons/ingress/addon.yaml:10: spec.regionValues.eu-west-2: addon "ingress" does not run in region "eu-west-2"; remove these values or select the region`},
	}, {
		name:  "no render source",
		files: map[string]string{"addons/ingress/addon.yaml": "apiVersion: meridian.dev/v1alpha1\nkind: Addon\nmetadata:\n  name: ingress\nspec:\n  namespace: ingress-nginx\n"},
		want:  []string{`addons/ingress/addon.yaml:5: spec: addon has neither a Helm chart nor a Kustomize base; set spec.helm.chart (or spec.helm.repository) or spec.kustomize.path`},
	}, {
		name:  "a directory without addon.yaml",
		files: map[string]string{"addons/other/values.yaml": "a: 1\n"},
		want:  []string{`addons/other: directory has no addon.yaml; add one of kind Addon or remove the directory`},
	}, {
		name:  "a bad region label",
		files: map[string]string{"regions/eu-west-2.yaml": "apiVersion: meridian.dev/v1alpha1\nkind: Region\nmetadata:\n  name: eu-west-2\n  labels: {tier: \"not ok!\"}\nspec:\n  awsRegion: eu-west-2\n  cluster:\n    kubeconfigContext: eu-west-2\n  endpoint:\n    type: CNAME\n    target: ingress.euw2.example.net\n"},
		want:  []string{`regions/eu-west-2.yaml:5: metadata.labels.tier: "not ok!" is not a label value: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(withAddons(tt.files))
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
