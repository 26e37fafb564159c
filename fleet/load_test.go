package fleet

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// validFleet is a small fleet: two regions, two apps, two tenants.
func validFleet() fstest.MapFS {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	return fstest.MapFS{
		"fleet.yaml": file(`apiVersion: meridian.dev/v1alpha1
kind: Fleet
metadata:
  name: acme
spec:
  dns:
    zone: fleet.example.com
    hostedZoneID: Z0EXAMPLE
  waves:
    - name: canary
      regions: [eu-west-2]
    - name: main
      regions: [us-east-1]
  values:
    layer: fleet
    fleetOnly: true
`),
		"regions/us-east-1.yaml": file(`apiVersion: meridian.dev/v1alpha1
kind: Region
metadata:
  name: us-east-1
spec:
  awsRegion: us-east-1
  cluster:
    kubeconfigContext: us-east-1
  endpoint:
    type: Alias
    target: lb-1.elb.us-east-1.amazonaws.com
    hostedZoneID: Z35SXDOTRQ7X7K
  values:
    layer: region
    regionName: us-east-1
`),
		"regions/eu-west-2.yaml": file(`apiVersion: meridian.dev/v1alpha1
kind: Region
metadata:
  name: eu-west-2
spec:
  awsRegion: eu-west-2
  cluster:
    kubeconfigContext: eu-west-2
  endpoint:
    type: CNAME
    target: ingress.euw2.example.net
`),
		"apps/web/app.yaml": file(`apiVersion: meridian.dev/v1alpha1
kind: App
metadata:
  name: web
spec:
  helm:
    chart: chart
  valuesFiles: [defaults.yaml]
  values:
    layer: app
    image: {repository: web, tag: "1.0"}
  expose:
    subdomain: web
    port: 443
    protocol: HTTPS
    healthCheck:
      path: /healthz
`),
		"apps/web/defaults.yaml":    file("layer: app-file\nfromFile: true\nimage: {pullPolicy: IfNotPresent}\n"),
		"apps/web/chart/Chart.yaml": file("apiVersion: v2\nname: web\nversion: 0.1.0\n"),
		"apps/api/app.yaml": file(`apiVersion: meridian.dev/v1alpha1
kind: App
metadata:
  name: api
spec:
  kustomize:
    path: base
`),
		"apps/api/base/kustomization.yaml": file("resources: []\n"),
		"tenants/trucking.yaml": file(`apiVersion: meridian.dev/v1alpha1
kind: Tenant
metadata:
  name: trucking
spec:
  regions: [us-east-1, eu-west-2]
  quota:
    hard: {requests.cpu: "4", pods: "20"}
  apps:
    - name: web
      valuesFiles: [trucking/web.yaml]
      values:
        layer: tenant
        image: {tag: "2.0"}
      regionValues:
        eu-west-2:
          layer: tenant-region
    - name: api
      regions: [eu-west-2]
`),
		"tenants/trucking/web.yaml": file("layer: tenant-file\ntenantFile: true\n"),
		"tenants/trucking.secrets.sops.yaml": file(`web:
  password: ENC[AES256_GCM,data:abc,type:str]
sops:
  mac: ENC[AES256_GCM,data:def,type:str]
  version: 3.13.3
`),
		"tenants/billing.yaml": file(`apiVersion: meridian.dev/v1alpha1
kind: Tenant
metadata:
  name: billing
spec:
  regions: [us-east-1]
  apps:
    - name: web
`),
	}
}

func TestLoadValidFleet(t *testing.T) {
	m, err := Load(validFleet())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var ids []string
	for _, p := range m.Placements() {
		ids = append(ids, p.ID().String())
	}
	want := []string{"billing/us-east-1/web", "trucking/eu-west-2/api", "trucking/eu-west-2/web", "trucking/us-east-1/web"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("placements (-want +got):\n%s", diff)
	}
	if got := m.Tenant("trucking").SecretsFile; got != "tenants/trucking.secrets.sops.yaml" {
		t.Errorf("trucking secrets file = %q", got)
	}
	if got := m.Tenant("billing").SecretsFile; got != "" {
		t.Errorf("billing secrets file = %q, want none", got)
	}
}

func TestPlacementValuesPrecedence(t *testing.T) {
	m, err := Load(validFleet())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	byID := map[string]Values{}
	for _, p := range m.Placements() {
		byID[p.ID().String()] = p.Values
	}
	tests := []struct {
		id   string
		want Values
	}{{
		id: "trucking/eu-west-2/web", // every layer; tenant × region wins
		want: Values{
			"layer": "tenant-region", "fromFile": true, "fleetOnly": true, "tenantFile": true,
			"image": map[string]any{"repository": "web", "tag": "2.0", "pullPolicy": "IfNotPresent"},
		},
	}, {
		id: "trucking/us-east-1/web", // no tenant × region layer here; region values apply
		want: Values{
			"layer": "tenant", "fromFile": true, "fleetOnly": true, "tenantFile": true, "regionName": "us-east-1",
			"image": map[string]any{"repository": "web", "tag": "2.0", "pullPolicy": "IfNotPresent"},
		},
	}, {
		id: "billing/us-east-1/web", // no tenant values: the region layer is the last
		want: Values{
			"layer": "region", "fromFile": true, "fleetOnly": true, "regionName": "us-east-1",
			"image": map[string]any{"repository": "web", "tag": "1.0", "pullPolicy": "IfNotPresent"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, byID[tt.id]); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadErrors breaks the valid fleet one way per case and checks the exact errors,
// with file and line.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name   string
		change map[string]string // file → new content; "" deletes the file
		want   []string
	}{{
		name: "unknown field with a suggestion",
		change: map[string]string{"tenants/billing.yaml": `apiVersion: meridian.dev/v1alpha1
kind: Tenant
metadata:
  name: billing
spec:
  regoins: [us-east-1]
  apps: []
`},
		want: []string{
			`tenants/billing.yaml:5: spec.regions: required field "regions" is missing; add it`,
			`tenants/billing.yaml:6: spec.regoins: unknown field; did you mean "regions"?`,
		},
	}, {
		name: "duplicate key",
		change: map[string]string{"tenants/billing.yaml": `apiVersion: meridian.dev/v1alpha1
kind: Tenant
metadata:
  name: billing
spec:
  regions: [us-east-1]
  regions: [eu-west-2]
`},
		want: []string{`tenants/billing.yaml:7: spec.regions: duplicate key; it is already set on line 6, keep one of them`},
	}, {
		name: "duplicate tenant name in another file",
		change: map[string]string{"tenants/billing-copy.yaml": `apiVersion: meridian.dev/v1alpha1
kind: Tenant
metadata:
  name: billing
spec:
  regions: [us-east-1]
`},
		want: []string{`tenants/billing.yaml:4: metadata.name: duplicate tenant "billing": tenants/billing-copy.yaml:4 already defines it; rename one of them or delete the copy`},
	}, {
		name: "dangling region and app references",
		change: map[string]string{"tenants/billing.yaml": `apiVersion: meridian.dev/v1alpha1
kind: Tenant
metadata:
  name: billing
spec:
  regions: [us-east-1, ap-south-9]
  apps:
    - name: wbe
`},
		want: []string{
			`tenants/billing.yaml:6: spec.regions[1]: region "ap-south-9" does not exist; create regions/ap-south-9.yaml or fix the name`,
			`tenants/billing.yaml:8: spec.apps[0].name: app "wbe" does not exist; create apps/wbe/app.yaml or fix the name`,
		},
	}, {
		name: "name is not a DNS-1123 label",
		change: map[string]string{"tenants/billing.yaml": `apiVersion: meridian.dev/v1alpha1
kind: Tenant
metadata:
  name: Billing_EU
spec:
  regions: [us-east-1]
`},
		want: []string{`tenants/billing.yaml:4: metadata.name: "Billing_EU" is not a DNS-1123 label: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
	}, {
		name: "app with neither chart nor base",
		change: map[string]string{"apps/api/app.yaml": `apiVersion: meridian.dev/v1alpha1
kind: App
metadata:
  name: api
spec:
  values: {replicas: 1}
`},
		want: []string{`apps/api/app.yaml:5: spec: app has neither a Helm chart nor a Kustomize base; set spec.helm.chart (or spec.helm.repository) or spec.kustomize.path`},
	}, {
		name:   "values file that is not YAML",
		change: map[string]string{"apps/web/defaults.yaml": "layer: app\n  image: [unclosed\n"},
		want:   []string{`apps/web/defaults.yaml:2: not valid YAML: mapping values are not allowed in this context`},
	}, {
		name:   "a broken region file does not also break its references",
		change: map[string]string{"regions/eu-west-2.yaml": "kind: Region\nspec: [\n"},
		want:   []string{`regions/eu-west-2.yaml:2: not valid YAML: did not find expected node content`},
	}, {
		name: "wrong scalar type and enum",
		change: map[string]string{"regions/eu-west-2.yaml": `apiVersion: meridian.dev/v1alpha1
kind: Region
metadata:
  name: eu-west-2
spec:
  awsRegion: [eu-west-2]
  cluster:
    kubeconfigContext: eu-west-2
  endpoint:
    type: AAAA
    target: ingress.euw2.example.net
`},
		want: []string{
			`regions/eu-west-2.yaml:6: spec.awsRegion: expected a string, got a list`,
			`regions/eu-west-2.yaml:10: spec.endpoint.type: "AAAA" is not allowed; use one of Alias, CNAME, A`,
		},
	}, {
		name:   "cluster access: none",
		change: map[string]string{"regions/eu-west-2.yaml": regionWithCluster("    {}\n")},
		want:   []string{`regions/eu-west-2.yaml:7: spec.cluster: says neither kubeconfigContext, secretRef nor eks; set one so Meridian can reach the cluster`},
	}, {
		name:   "cluster access: more than one",
		change: map[string]string{"regions/eu-west-2.yaml": regionWithCluster("    kubeconfigContext: eu-west-2\n    eks: {name: prod}\n    secretRef: {namespace: ops, name: k, key: k}\n")},
		want:   []string{`regions/eu-west-2.yaml:7: spec.cluster: sets kubeconfigContext and secretRef and eks; keep one`},
	}, {
		name:   "cluster access: a Secret that cannot exist",
		change: map[string]string{"regions/eu-west-2.yaml": regionWithCluster("    secretRef: {namespace: Ops, name: Kube_Configs, key: \"a/b\"}\n")},
		want: []string{
			`regions/eu-west-2.yaml:8: spec.cluster.secretRef.key: "a/b" is not a Secret key (letters, digits, '-', '_' and '.')`,
			`regions/eu-west-2.yaml:8: spec.cluster.secretRef.name: "Kube_Configs" is not a Secret name (lowercase letters, digits, '-' and '.')`,
			`regions/eu-west-2.yaml:8: spec.cluster.secretRef.namespace: "Ops" is not a DNS-1123 label: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
		},
	}, {
		name:   "cluster access: an EKS cluster that cannot exist",
		change: map[string]string{"regions/eu-west-2.yaml": regionWithCluster("    eks: {name: \"prod cluster\", region: Europe, roleARN: \"arn:aws:iam::1234:user/me\"}\n")},
		want: []string{
			`regions/eu-west-2.yaml:8: spec.cluster.eks.name: "prod cluster" is not an EKS cluster name (up to 100 letters, digits, '-' and '_', starting with a letter or digit)`,
			`regions/eu-west-2.yaml:8: spec.cluster.eks.region: "Europe" is not an AWS region code such as us-east-1; leave it out to use spec.awsRegion`,
			`regions/eu-west-2.yaml:8: spec.cluster.eks.roleARN: "arn:aws:iam::1234:user/me" is not an IAM role ARN such as arn:aws:iam::111122223333:role/meridian`,
		},
	}, {
		name:   "cluster access: an EKS cluster without a name",
		change: map[string]string{"regions/eu-west-2.yaml": regionWithCluster("    eks: {region: eu-west-2}\n")},
		want:   []string{`regions/eu-west-2.yaml:8: spec.cluster.eks.name: required field "name" is missing; add it`},
	}, {
		name:   "missing fleet.yaml",
		change: map[string]string{"fleet.yaml": ""},
		want:   []string{`fleet.yaml: missing; every fleet repository has a fleet.yaml of kind Fleet at its root (see docs/fleet-format.md)`},
	}, {
		name:   "secrets file not encrypted",
		change: map[string]string{"tenants/trucking.secrets.sops.yaml": "web:\n  password: hunter2\n"},
		want:   []string{"tenants/trucking.secrets.sops.yaml:1: is not encrypted (no sops section); encrypt it with `sops --encrypt --in-place tenants/trucking.secrets.sops.yaml` before committing, and rotate any secret it exposed"},
	}, {
		name:   "values file leaving the repository",
		change: map[string]string{"apps/web/app.yaml": "apiVersion: meridian.dev/v1alpha1\nkind: App\nmetadata:\n  name: web\nspec:\n  helm:\n    chart: chart\n  valuesFiles: [../../../etc/passwd]\n"},
		want:   []string{`apps/web/app.yaml:8: spec.valuesFiles[0]: "../../../etc/passwd" leaves the repository; fleet files may only name files inside it`},
	}, {
		name: "region in no wave and an unknown wave region",
		change: map[string]string{"fleet.yaml": `apiVersion: meridian.dev/v1alpha1
kind: Fleet
metadata:
  name: acme
spec:
  dns: {zone: fleet.example.com, hostedZoneID: Z0EXAMPLE}
  waves:
    - name: main
      regions: [us-east-1, us-east-1, mars-1]
`},
		want: []string{
			`fleet.yaml:7: spec.waves: region "eu-west-2" is in no wave; add it to one so that rollouts reach it`,
			`fleet.yaml:9: spec.waves[0].regions[1]: region "us-east-1" is already in wave "main"; a region belongs to exactly one wave`,
			`fleet.yaml:9: spec.waves[0].regions[2]: region "mars-1" does not exist; create regions/mars-1.yaml or fix the name`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := maps.Clone(validFleet())
			for file, content := range tt.change {
				if content == "" {
					delete(fsys, file)
					continue
				}
				fsys[file] = &fstest.MapFile{Data: []byte(content)}
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

// TestLoadRefusesAliasBomb checks that a billion-laughs document is refused quickly
// with a located error instead of being expanded.
func TestLoadRefusesAliasBomb(t *testing.T) {
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		bomb += name + ": &" + name + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = name
	}
	_, _, errs := decodeValues("apps/web/bomb.yaml", []byte(bomb))
	if len(errs) == 0 {
		t.Fatal("alias bomb accepted")
	}
	if got := errs[0].Error(); !strings.Contains(got, "apps/web/bomb.yaml:") || !strings.Contains(got, "aliases included") {
		t.Errorf("error = %q, want it located and naming aliases", got)
	}
}

// TestLoadDirRefusesSymlinkOutOfRepository checks that a values file symlinked to a
// file outside the repository is refused, not read.
func TestLoadDirRefusesSymlinkOutOfRepository(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(outside, []byte("stolen: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, validFleet()); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "apps/web/defaults.yaml")
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	_, err := LoadDir(dir)
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("LoadDir = %v, want one error", err)
	}
	if got := list[0].Error(); !strings.HasPrefix(got, "apps/web/defaults.yaml: cannot read: ") {
		t.Errorf("error = %q, want apps/web/defaults.yaml refused", got)
	}
}

func TestLoadWarnsAboutPlaintextSecrets(t *testing.T) {
	fsys := maps.Clone(validFleet())
	fsys["tenants/trucking/web.yaml"] = &fstest.MapFile{Data: []byte("database:\n  password: hunter2-plain\n  passwordSecretName: db\napiToken: ${TOKEN}\n")}
	m, err := Load(fsys)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var got []string
	for _, w := range m.Warnings {
		got = append(got, w.Error())
	}
	want := []string{`tenants/trucking/web.yaml:2: database.password: "password" looks like a secret in plain text; move it to the tenant's .secrets.sops.yaml file, encrypted with SOPS`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if strings.Contains(m.Warnings.Error(), "hunter2") {
		t.Error("a warning shows the secret value")
	}
}

// regionWithCluster is regions/eu-west-2.yaml of validFleet with the lines of
// spec.cluster given.
func regionWithCluster(cluster string) string {
	return `apiVersion: meridian.dev/v1alpha1
kind: Region
metadata:
  name: eu-west-2
spec:
  awsRegion: eu-west-2
  cluster:
` + cluster + `  endpoint:
    type: CNAME
    target: ingress.euw2.example.net
`
}
