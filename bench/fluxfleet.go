package main

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/render"
)

// The fleet as a Flux user keeps it: beside the Meridian fleet, in the same
// repository and commit, a flux/ directory that a root Kustomization (which the
// harness creates, as `flux bootstrap` would) applies into the management
// cluster:
//
//	flux/fleet/charts.yaml                   a HelmChart per Helm app, built from the app's chart directory
//	flux/fleet/<tenant>.yaml                 the tenant's Kustomizations and HelmReleases
//	flux/namespaces/<tenant>/<region>/       the tenant's namespace and isolation objects in a region
//	flux/secrets/<tenant>/values.sops.yaml   the tenant's secret Helm values, a SOPS-encrypted Secret
//
// Each placement is one HelmRelease (Helm apps) or one Kustomization (Kustomize
// apps) that reaches its region through a kubeconfig Secret; each tenant ×
// region one Kustomization of its namespace; each tenant one Kustomization that
// decrypts its values Secret into the management cluster, where the tenant's
// HelmReleases read it through valuesFrom.
const (
	fluxDir        = "flux"
	fluxNamespace  = "flux-system"
	fluxSource     = "fleet"    // the GitRepository
	fluxRoot       = "fleet"    // the root Kustomization, of flux/fleet
	fluxAgeSecret  = "sops-age" // the age key kustomize-controller decrypts with
	fluxInterval   = "1h"       // as Meridian's repository interval: changes arrive by a trigger
	fluxRetry      = "10s"
	fluxKubeconfig = "value" // the key of a kubeconfig Secret
)

// fluxKubeconfigSecret names the Secret holding region's kubeconfig.
func fluxKubeconfigSecret(region string) string { return "kubeconfig-" + region }

// fluxValuesSecret names the Secret holding tenant's decrypted Helm values.
func fluxValuesSecret(tenant string) string { return tenant + "-values" }

// fluxName names the Flux object of a unit: tenant-region-app, or
// tenant-region-namespace for the namespace unit.
func fluxName(id fleet.UnitID) string {
	if id.App == "" {
		return id.Tenant + "-" + id.Region + "-namespace"
	}
	return id.Tenant + "-" + id.Region + "-" + id.App
}

// FluxFleet is what fluxFleet generates: the files of flux/, but for the
// encrypted values Secrets, and the objects it declares.
type FluxFleet struct {
	// Files are flux/fleet/*.yaml and flux/namespaces/..., by slash path in the repository.
	Files map[string][]byte
	// ValuesSecrets are the plain values Secrets to encrypt into
	// flux/secrets/<tenant>/values.sops.yaml, by tenant.
	ValuesSecrets map[string][]byte
	// Kustomizations and HelmReleases name every object in flux/fleet.
	Kustomizations, HelmReleases []string
}

// fluxFleet expresses model as Flux objects. namespaces are the rendered
// namespace units (render.Result.Units with no app), whose objects are the
// tenant's namespace and isolation objects Meridian applies; secrets are each
// tenant's decrypted values by app (the tenant's secrets file), for valuesFrom.
// Helm values are render.PlacementValues: what Meridian gives the chart, facts
// included.
func fluxFleet(model *fleet.Model, zone string, namespaces []*render.Unit, secrets map[string]map[string]any) (*FluxFleet, error) {
	out := &FluxFleet{Files: map[string][]byte{}, ValuesSecrets: map[string][]byte{}}
	var charts []any
	for _, a := range model.Apps {
		if a.Spec.Helm == nil {
			continue
		}
		if a.Spec.Helm.Chart == "" {
			return nil, fmt.Errorf("app %s: the Flux peer builds charts from the repository only", a.Metadata.Name)
		}
		charts = append(charts, object("source.toolkit.fluxcd.io/v1", "HelmChart", a.Metadata.Name, fluxNamespace, map[string]any{
			"interval":          fluxInterval,
			"chart":             "./" + path.Join("apps", a.Metadata.Name, a.Spec.Helm.Chart),
			"reconcileStrategy": "ChartVersion",
			"sourceRef":         map[string]any{"kind": "GitRepository", "name": fluxSource},
		}))
	}
	if len(charts) > 0 {
		data, err := documents(charts)
		if err != nil {
			return nil, err
		}
		out.Files[path.Join(fluxDir, "fleet", "charts.yaml")] = data
	}

	byTenant := map[string][]any{}
	for _, u := range namespaces {
		if u.App != "" || u.Addon != "" {
			continue
		}
		id := u.ID()
		dir := path.Join(fluxDir, "namespaces", id.Tenant, id.Region)
		objs := make([]any, 0, len(u.Objects))
		for _, o := range u.Objects {
			objs = append(objs, cleanObject(o))
		}
		data, err := documents(objs)
		if err != nil {
			return nil, err
		}
		out.Files[path.Join(dir, "objects.yaml")] = data
		name := fluxName(id)
		byTenant[id.Tenant] = append(byTenant[id.Tenant], object("kustomize.toolkit.fluxcd.io/v1", "Kustomization", name, fluxNamespace, map[string]any{
			"interval":      fluxInterval,
			"retryInterval": fluxRetry,
			"path":          "./" + dir,
			"prune":         true,
			"sourceRef":     map[string]any{"kind": "GitRepository", "name": fluxSource},
			"kubeConfig":    kubeConfigRef(id.Region),
		}))
		out.Kustomizations = append(out.Kustomizations, name)
	}

	for tenant, apps := range secrets {
		secret, err := valuesSecret(tenant, apps)
		if err != nil {
			return nil, err
		}
		data, err := yaml.Marshal(secret)
		if err != nil {
			return nil, err
		}
		out.ValuesSecrets[tenant] = data
		name := tenant + "-secrets"
		byTenant[tenant] = append(byTenant[tenant], object("kustomize.toolkit.fluxcd.io/v1", "Kustomization", name, fluxNamespace, map[string]any{
			"interval":      fluxInterval,
			"retryInterval": fluxRetry,
			"path":          "./" + path.Join(fluxDir, "secrets", tenant),
			"prune":         true,
			"sourceRef":     map[string]any{"kind": "GitRepository", "name": fluxSource},
			"decryption":    map[string]any{"provider": "sops", "secretRef": map[string]any{"name": fluxAgeSecret}},
		}))
		out.Kustomizations = append(out.Kustomizations, name)
	}

	for _, p := range model.Placements() {
		id := fleet.UnitID{Tenant: p.Tenant.Metadata.Name, Region: p.Region.Metadata.Name, App: p.App.Metadata.Name}
		name := fluxName(id)
		switch {
		case p.App.Spec.Helm != nil:
			spec := map[string]any{
				"interval":         fluxInterval,
				"releaseName":      id.App,
				"targetNamespace":  p.Namespace,
				"storageNamespace": p.Namespace,
				"chartRef":         map[string]any{"kind": "HelmChart", "name": id.App, "namespace": fluxNamespace},
				"kubeConfig":       kubeConfigRef(id.Region),
				// The namespace Kustomization owns the namespace; Helm creates
				// it when the release comes first, as Meridian's namespace unit
				// comes first.
				"install": map[string]any{"createNamespace": true, "remediation": map[string]any{"retries": 3}},
				"upgrade": map[string]any{"remediation": map[string]any{"retries": 3}},
				"values":  map[string]any(render.PlacementValues(p, zone)),
			}
			if _, ok := secrets[id.Tenant][id.App]; ok {
				spec["valuesFrom"] = []any{map[string]any{"kind": "Secret", "name": fluxValuesSecret(id.Tenant), "valuesKey": id.App + ".yaml"}}
			}
			byTenant[id.Tenant] = append(byTenant[id.Tenant], object("helm.toolkit.fluxcd.io/v2", "HelmRelease", name, fluxNamespace, spec))
			out.HelmReleases = append(out.HelmReleases, name)
		case p.App.Spec.Kustomize != nil:
			if p.App.Spec.Kustomize.Substitute {
				return nil, fmt.Errorf("app %s: the Flux peer does not express substitution", id.App)
			}
			byTenant[id.Tenant] = append(byTenant[id.Tenant], object("kustomize.toolkit.fluxcd.io/v1", "Kustomization", name, fluxNamespace, map[string]any{
				"interval":        fluxInterval,
				"retryInterval":   fluxRetry,
				"path":            "./" + path.Join("apps", id.App, p.App.Spec.Kustomize.Path),
				"prune":           true,
				"wait":            true, // Ready when healthy, as a HelmRelease and Meridian's unit
				"targetNamespace": p.Namespace,
				"sourceRef":       map[string]any{"kind": "GitRepository", "name": fluxSource},
				"kubeConfig":      kubeConfigRef(id.Region),
				"dependsOn":       []any{map[string]any{"name": fluxName(id.Namespace())}},
			}))
			out.Kustomizations = append(out.Kustomizations, name)
		default:
			return nil, fmt.Errorf("app %s: neither Helm nor Kustomize", id.App)
		}
	}
	for tenant, objs := range byTenant {
		data, err := documents(objs)
		if err != nil {
			return nil, err
		}
		out.Files[path.Join(fluxDir, "fleet", tenant+".yaml")] = data
	}
	sort.Strings(out.Kustomizations)
	sort.Strings(out.HelmReleases)
	return out, nil
}

// object is a Kubernetes object with a spec.
func object(apiVersion, kind, name, namespace string, spec map[string]any) map[string]any {
	return map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"spec":       spec,
	}
}

func kubeConfigRef(region string) map[string]any {
	return map[string]any{"secretRef": map[string]any{"name": fluxKubeconfigSecret(region), "key": fluxKubeconfig}}
}

// valuesSecret is tenant's values Secret in the management cluster: one key per
// app, <app>.yaml, holding that app's section of the tenant's secrets file.
func valuesSecret(tenant string, apps map[string]any) (map[string]any, error) {
	data := map[string]any{}
	for app, v := range apps {
		b, err := yaml.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: secret values of %s: %w", tenant, app, err)
		}
		data[app+".yaml"] = string(b)
	}
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata":   map[string]any{"name": fluxValuesSecret(tenant), "namespace": fluxNamespace},
		"type":       "Opaque",
		"stringData": data,
	}, nil
}

// cleanObject is o as a file in git holds it: without what the API server sets
// and without Meridian's bookkeeping (its annotations, among them the commit it
// was rendered from, and its managed-by label), which Flux keeps its own way.
func cleanObject(o *unstructured.Unstructured) map[string]any {
	c := o.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(c.Object, "status")
	annotations := c.GetAnnotations()
	for k := range annotations {
		if strings.HasPrefix(k, "meridian.dev/") {
			delete(annotations, k)
		}
	}
	c.SetAnnotations(annotations)
	labels := c.GetLabels()
	if labels["app.kubernetes.io/managed-by"] == "meridian" {
		delete(labels, "app.kubernetes.io/managed-by")
	}
	c.SetLabels(labels)
	return c.Object
}

// documents joins objects into one multi-document YAML file.
func documents(objs []any) ([]byte, error) {
	var b bytes.Buffer
	for i, o := range objs {
		data, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(data)
	}
	return b.Bytes(), nil
}
