// Package fleetgen writes synthetic fleet repositories of any size for benchmarks and
// scale tests: T tenants × R regions × A apps, built from the apps of fleet-example
// (Helm and Kustomize) so that every placement renders real charts and bases.
package fleetgen

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Spec is the shape of a synthetic fleet.
type Spec struct {
	// Tenants, Regions and Apps are how many of each to write. Apps cycle through the
	// example's portal (Helm, exposed), api (Kustomize, exposed) and worker (Helm).
	Tenants, Regions, Apps int
	// Example is the fleet-example directory to take apps and secrets from.
	Example string
	// Secrets gives every tenant running portal a copy of the example's encrypted
	// trucking secrets (decryptable with the example's demo key).
	Secrets bool
}

var (
	exampleApps   = []string{"portal", "api", "worker"}
	regionNames   = []string{"us-east-1", "eu-west-2", "ap-northeast-2", "us-west-2", "eu-central-1", "ap-southeast-1"}
	regionCluster = "  cluster:\n    kubeconfigContext: %s\n  endpoint:\n    type: CNAME\n    target: ingress.%s.example.net\n"
)

// Placements is the number of placements the spec expands to.
func (s Spec) Placements() int { return s.Tenants * s.Regions * s.Apps }

// AppName is the name of synthetic app i: the example app it copies, numbered after
// the first round.
func AppName(i int) string {
	name := exampleApps[i%len(exampleApps)]
	if i >= len(exampleApps) {
		name = fmt.Sprintf("%s-%d", name, i/len(exampleApps))
	}
	return name
}

// RegionName is the name of synthetic region i.
func RegionName(i int) string {
	if i < len(regionNames) {
		return regionNames[i]
	}
	return fmt.Sprintf("region-%d", i)
}

// TenantName is the name of synthetic tenant i.
func TenantName(i int) string { return fmt.Sprintf("tenant-%03d", i) }

// Write writes the fleet into dir, which should be empty.
func Write(dir string, s Spec) error {
	w := writer{dir: dir}
	var regions []string
	for i := range s.Regions {
		regions = append(regions, RegionName(i))
	}
	w.file("fleet.yaml", header("Fleet", "synthetic")+
		"spec:\n  dns:\n    zone: fleet.example.com\n    hostedZoneID: Z0EXAMPLE0000000\n  values:\n    global: {logFormat: json}\n")
	for _, r := range regions {
		w.file("regions/"+r+".yaml", header("Region", r)+"spec:\n  awsRegion: "+awsRegion(r)+"\n  kubernetesVersion: \"1.37.2\"\n"+fmt.Sprintf(regionCluster, r, r))
	}
	var apps []string
	for i := range s.Apps {
		name := AppName(i)
		apps = append(apps, name)
		base := exampleApps[i%len(exampleApps)]
		if w.err == nil {
			w.err = os.CopyFS(filepath.Join(dir, "apps", name), os.DirFS(filepath.Join(s.Example, "apps", base)))
		}
		if name != base { // rename the copy and its subdomain
			w.replace(filepath.Join("apps", name, "app.yaml"), "name: "+base+"\n", "name: "+name+"\n")
			w.replace(filepath.Join("apps", name, "app.yaml"), "subdomain: "+base, "subdomain: "+name)
		}
	}
	for i := range s.Tenants {
		t := TenantName(i)
		var b strings.Builder
		b.WriteString(header("Tenant", t))
		fmt.Fprintf(&b, "spec:\n  regions: [%s]\n  quota:\n    hard: {requests.cpu: \"4\", pods: \"50\"}\n  apps:\n", strings.Join(regions, ", "))
		for j, a := range apps {
			fmt.Fprintf(&b, "    - name: %s\n      values:\n        replicas: %d\n        queue: {url: \"amqp://queue.%s.internal/%d\"}\n", a, 1+(i+j)%3, t, j)
		}
		w.file("tenants/"+t+".yaml", b.String())
		if s.Secrets && slices.Contains(apps, "portal") {
			data, err := os.ReadFile(filepath.Join(s.Example, "tenants", "trucking.secrets.sops.yaml"))
			if err != nil && w.err == nil {
				w.err = err
			}
			w.file("tenants/"+t+".secrets.sops.yaml", string(data))
		}
	}
	return w.err
}

func header(kind, name string) string {
	return "apiVersion: meridian.dev/v1alpha1\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n"
}

func awsRegion(name string) string {
	if strings.HasPrefix(name, "region-") {
		return "us-east-1"
	}
	return name
}

// writer writes files, keeping the first error.
type writer struct {
	dir string
	err error
}

func (w *writer) file(name, content string) {
	if w.err != nil {
		return
	}
	p := filepath.Join(w.dir, filepath.FromSlash(name))
	if w.err = os.MkdirAll(filepath.Dir(p), 0o755); w.err == nil {
		w.err = os.WriteFile(p, []byte(content), 0o644)
	}
}

func (w *writer) replace(name, old, new string) {
	if w.err != nil {
		return
	}
	p := filepath.Join(w.dir, name)
	data, err := os.ReadFile(p)
	if err != nil {
		w.err = err
		return
	}
	if !strings.Contains(string(data), old) {
		w.err = fmt.Errorf("fleetgen: %s has no %q to replace; fleet-example changed", name, old)
		return
	}
	w.err = os.WriteFile(p, []byte(strings.Replace(string(data), old, new, 1)), 0o644)
}
