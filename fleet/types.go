package fleet

import "slices"

// APIVersion is the only version of the fleet file format Meridian reads today.
const APIVersion = "meridian.dev/v1alpha1"

// SystemNamespace is the namespace Meridian keeps its own records in, in every region:
// the inventories of what it applied. No tenant may be named after it, since a
// tenant's name is its namespace in every region.
const SystemNamespace = "meridian-system"

// The kinds of fleet files, as written in their kind field.
const (
	KindFleet  = "Fleet"
	KindRegion = "Region"
	KindApp    = "App"
	KindTenant = "Tenant"
	KindAddon  = "Addon"
)

// TypeMeta identifies a file's format version and kind.
type TypeMeta struct {
	// APIVersion is the version of the file format; meridian.dev/v1alpha1.
	APIVersion string `yaml:"apiVersion" schema:"required"`
	// Kind is what the file describes: Fleet, Region, App, Tenant or Addon.
	Kind string `yaml:"kind" schema:"required"`
}

// ObjectMeta names a fleet object.
type ObjectMeta struct {
	// Name identifies the object within its kind; a DNS-1123 label, because it becomes
	// namespaces, DNS labels and Kubernetes labels.
	Name string `yaml:"name" schema:"required,dns1123"`
	// Labels are Kubernetes-style labels of the object. A region's labels are what
	// an addon's spec.regionSelector matches.
	Labels map[string]string `yaml:"labels,omitempty"`
}

// Values are free-form settings handed to an app's chart or kustomization, merged by
// the precedence in docs/fleet-format.md.
type Values map[string]any

// Fleet is fleet.yaml: settings that hold for every region, tenant and app.
type Fleet struct {
	TypeMeta `yaml:",inline"`
	// Metadata names the fleet.
	Metadata ObjectMeta `yaml:"metadata" schema:"required"`
	// Spec describes the fleet.
	Spec FleetSpec `yaml:"spec" schema:"required"`

	// Source is where the fleet was read from.
	Source Source `yaml:"-"`
	// SecretsFile is the path of fleet.secrets.sops.yaml, SOPS-encrypted values
	// given to every placement (merged just over spec.values), or empty.
	SecretsFile string `yaml:"-"`
}

// FleetSpec is the body of fleet.yaml.
type FleetSpec struct {
	// DNS is the Route53 zone that latency records are written to.
	DNS DNS `yaml:"dns" schema:"required"`
	// Waves order the regions for rollouts: a revision reaches a wave only when the
	// previous one is healthy. Empty means one wave holding every region.
	Waves []Wave `yaml:"waves,omitempty"`
	// Safety limits what one revision may do unattended.
	Safety Safety `yaml:"safety,omitempty"`
	// Values are given to every placement of the fleet.
	Values Values `yaml:"values,omitempty"`
	// ReservedNamespaces are namespaces the platform owns, such as a service mesh's,
	// that no tenant may be named after: a tenant's name is its namespace in every
	// region. Each is a namespace name, or a prefix ending in * such as istio-*.
	ReservedNamespaces []string `yaml:"reservedNamespaces,omitempty"`
}

// DNS names the public zone of the fleet.
type DNS struct {
	// Zone is the domain that app names are created under, e.g. fleet.example.com.
	Zone string `yaml:"zone" schema:"required"`
	// HostedZoneID is the Route53 hosted zone id of Zone.
	HostedZoneID string `yaml:"hostedZoneID" schema:"required"`
	// Drain lists regions whose latency records are withdrawn while their workloads
	// keep running, so that clients fail over to the other regions.
	Drain []string `yaml:"drain,omitempty"`
	// HealthChecks is how many Route53 health checks the fleet keeps:
	// perPlacement (the default), one per exposed placement probing its own
	// regional name; or perAppRegion, one per app and region probing the
	// region's endpoint at the app's health path, shared by every tenant there,
	// to stay far inside the account's health-check quota (docs/dns.md).
	HealthChecks string `yaml:"healthChecks,omitempty" schema:"enum=perPlacement|perAppRegion"`
}

// The health-check granularities of DNS.HealthChecks.
const (
	HealthChecksPerPlacement = "perPlacement"
	HealthChecksPerAppRegion = "perAppRegion"
)

// Wave is one step of a rollout.
type Wave struct {
	// Name labels the wave in status and logs.
	Name string `yaml:"name" schema:"required,dns1123"`
	// Regions are rolled out together in this wave.
	Regions []string `yaml:"regions" schema:"required"`
}

// Safety holds the limits that stop a revision before it does too much damage.
type Safety struct {
	// MaxDeletePercent holds a revision that would delete more than this share of a
	// region's objects until it is explicitly allowed. 0–100, default 30.
	MaxDeletePercent *int `yaml:"maxDeletePercent,omitempty" schema:"min=0,max=100"`
}

// DefaultMaxDeletePercent is the mass-deletion limit when fleet.yaml sets none.
const DefaultMaxDeletePercent = 30

// Region is regions/<name>.yaml: one Kubernetes cluster in one AWS region.
type Region struct {
	TypeMeta `yaml:",inline"`
	// Metadata names the region.
	Metadata ObjectMeta `yaml:"metadata" schema:"required"`
	// Spec describes the region.
	Spec RegionSpec `yaml:"spec" schema:"required"`

	// Source is where the region was read from.
	Source Source `yaml:"-"`
	// SecretsFile is the path of regions/<name>.secrets.sops.yaml, SOPS-encrypted
	// values given to every placement in the region (merged just over
	// spec.values), or empty.
	SecretsFile string `yaml:"-"`
}

// RegionSpec is the body of a Region file.
type RegionSpec struct {
	// AWSRegion is the AWS region of the cluster, used for Route53 latency records.
	AWSRegion string `yaml:"awsRegion" schema:"required"`
	// KubernetesVersion is the cluster's version, used to render charts for its API
	// capabilities, e.g. "1.37.2".
	KubernetesVersion string `yaml:"kubernetesVersion,omitempty"`
	// Cluster says how Meridian reaches the cluster; never credentials themselves.
	Cluster ClusterAccess `yaml:"cluster" schema:"required"`
	// Endpoint is where the region's ingress receives traffic.
	Endpoint Endpoint `yaml:"endpoint" schema:"required"`
	// IngressNamespace is the namespace of the region's ingress controller, whose pods
	// tenant network policies let in. Default ingress-nginx.
	IngressNamespace string `yaml:"ingressNamespace,omitempty" schema:"dns1123"`
	// Values are given to every placement in this region.
	Values Values `yaml:"values,omitempty"`
}

// ClusterAccess says how Meridian reaches a region's cluster, exactly one of its
// fields set; it never holds credentials.
type ClusterAccess struct {
	// KubeconfigContext is a context of the kubeconfig Meridian runs with.
	KubeconfigContext string `yaml:"kubeconfigContext,omitempty"`
	// SecretRef is a Secret in the management cluster that holds a kubeconfig,
	// read with Meridian's own identity there on every pass, so that a rotated
	// Secret is used without a restart.
	SecretRef *SecretRef `yaml:"secretRef,omitempty"`
	// EKS is an Amazon EKS cluster Meridian reaches with IAM: its endpoint and CA
	// come from the EKS API, its bearer token from Meridian's AWS credentials.
	EKS *EKSCluster `yaml:"eks,omitempty"`
}

// SecretRef points at one key of a Kubernetes Secret.
type SecretRef struct {
	// Namespace of the Secret.
	Namespace string `yaml:"namespace" schema:"required,dns1123"`
	// Name of the Secret.
	Name string `yaml:"name" schema:"required"`
	// Key within the Secret's data.
	Key string `yaml:"key" schema:"required"`
}

// EKSCluster names an Amazon EKS cluster. Meridian looks up its endpoint and CA
// with EKS DescribeCluster and authenticates with the token EKS accepts: a
// presigned STS GetCallerIdentity request of Meridian's AWS identity (the
// default credential chain: IRSA, EKS Pod Identity, environment), or of RoleARN
// when set. That identity must be mapped to a Kubernetes user in the cluster (an
// EKS access entry or the aws-auth ConfigMap).
type EKSCluster struct {
	// Name is the EKS cluster's name.
	Name string `yaml:"name" schema:"required"`
	// Region is the AWS region of the cluster. Default spec.awsRegion.
	Region string `yaml:"region,omitempty"`
	// RoleARN is an IAM role Meridian assumes (STS AssumeRole) to describe the
	// cluster and to sign its token; empty means Meridian's own identity.
	RoleARN string `yaml:"roleARN,omitempty"`
}

// AWSRegion is the AWS region of the cluster: Region, or the Region file's
// spec.awsRegion when empty.
func (c EKSCluster) AWSRegion(spec RegionSpec) string {
	if c.Region != "" {
		return c.Region
	}
	return spec.AWSRegion
}

// The kinds of regional endpoints a latency record can point at.
const (
	EndpointAlias = "Alias"
	EndpointCNAME = "CNAME"
	EndpointA     = "A"
)

// DefaultIngressNamespace is the ingress controller's namespace when a region names none.
const DefaultIngressNamespace = "ingress-nginx"

// Endpoint is the target of a region's latency records.
type Endpoint struct {
	// Type is Alias (an AWS load balancer), CNAME or A.
	Type string `yaml:"type" schema:"required,enum=Alias|CNAME|A"`
	// Target is a DNS name (Alias, CNAME) or an IPv4 address (A).
	Target string `yaml:"target" schema:"required"`
	// HostedZoneID is the load balancer's own hosted zone id; Alias only.
	HostedZoneID string `yaml:"hostedZoneID,omitempty"`
}

// App is apps/<name>/app.yaml: something a tenant can run, with its defaults.
type App struct {
	TypeMeta `yaml:",inline"`
	// Metadata names the app.
	Metadata ObjectMeta `yaml:"metadata" schema:"required"`
	// Spec describes the app.
	Spec AppSpec `yaml:"spec" schema:"required"`

	// Source is where the app was read from.
	Source Source `yaml:"-"`
}

// AppSpec is the body of an App file. Exactly one of Helm and Kustomize is set.
type AppSpec struct {
	// Helm renders the app from a Helm chart.
	Helm *HelmSource `yaml:"helm,omitempty"`
	// Kustomize renders the app from a Kustomize directory.
	Kustomize *KustomizeSource `yaml:"kustomize,omitempty"`
	// ValuesFiles are default values files, relative to app.yaml, merged in order.
	ValuesFiles []string `yaml:"valuesFiles,omitempty"`
	// Values are default values, merged over ValuesFiles.
	Values Values `yaml:"values,omitempty"`
	// Expose gives the app DNS names and health checks in every region it runs in.
	Expose *Expose `yaml:"expose,omitempty"`
	// AllowClusterScoped lists the cluster-scoped kinds this app may create, such as
	// ClusterRole; any other cluster-scoped object is refused.
	AllowClusterScoped []string `yaml:"allowClusterScoped,omitempty"`
}

// HelmSource is a chart in the repository, or a pinned chart from a chart repository.
type HelmSource struct {
	// Chart is a chart directory relative to app.yaml. Not set with Repository.
	Chart string `yaml:"chart,omitempty"`
	// Repository is an HTTP(S) or oci:// chart repository.
	Repository string `yaml:"repository,omitempty"`
	// Name is the chart's name in Repository.
	Name string `yaml:"name,omitempty"`
	// Version pins the chart from Repository to one version.
	Version string `yaml:"version,omitempty"`
	// FactsKey is the top-level values key under which the chart receives its
	// placement's facts (tenant, region, awsRegion, app, namespace, zone, and host
	// and regionalHost when exposed), e.g. meridian. Empty, the default, gives the
	// chart exactly the values the fleet sets, so a values schema that allows no
	// other key still validates.
	FactsKey string `yaml:"factsKey,omitempty" json:"factsKey,omitempty"`
}

// KustomizeSource is a Kustomize directory in the repository.
type KustomizeSource struct {
	// Path is the directory holding kustomization.yaml, relative to app.yaml.
	Path string `yaml:"path" schema:"required"`
	// Substitute replaces ${var} references in the built objects, as Flux's
	// post-build substitution does: the placement's facts as meridian_tenant,
	// meridian_host, ..., and every scalar value by its path (image.tag is
	// image_tag). An unset variable without a default is an error naming it; an
	// object labelled or annotated kustomize.toolkit.fluxcd.io/substitute:
	// disabled is left as it is. Off by default: the objects are exactly what
	// kustomize builds, ${...} included.
	Substitute bool `yaml:"substitute,omitempty" json:"substitute,omitempty"`
}

// The protocols a health check can use.
const (
	ProtocolHTTP  = "HTTP"
	ProtocolHTTPS = "HTTPS"
)

// Expose describes how clients reach an app and how its health is checked.
type Expose struct {
	// Subdomain is the app's label in <subdomain>.<tenant>.<zone> and
	// <subdomain>.<tenant>.<region>.<zone>.
	Subdomain string `yaml:"subdomain" schema:"required,dns1123"`
	// Port is where the regional endpoint serves the app.
	Port int `yaml:"port" schema:"required,min=1,max=65535"`
	// Protocol is HTTP or HTTPS.
	Protocol string `yaml:"protocol" schema:"required,enum=HTTP|HTTPS"`
	// HealthCheck is the Route53 health check of the app in each region.
	HealthCheck HealthCheck `yaml:"healthCheck" schema:"required"`
}

// HealthCheck is how Route53 probes an app in a region.
type HealthCheck struct {
	// Path is the HTTP path that answers 2xx or 3xx when the app is healthy.
	Path string `yaml:"path" schema:"required"`
	// IntervalSeconds between probes: 10 or 30. Default 30.
	IntervalSeconds int `yaml:"intervalSeconds,omitempty" schema:"enum=10|30"`
	// FailureThreshold is how many failed probes mark the region unhealthy: 1–10. Default 3.
	FailureThreshold int `yaml:"failureThreshold,omitempty" schema:"min=1,max=10"`
}

// Tenant is tenants/<name>.yaml: an isolated business unit and what it runs where.
type Tenant struct {
	TypeMeta `yaml:",inline"`
	// Metadata names the tenant; it is also the tenant's namespace in every region.
	Metadata ObjectMeta `yaml:"metadata" schema:"required"`
	// Spec describes the tenant.
	Spec TenantSpec `yaml:"spec" schema:"required"`

	// Source is where the tenant was read from.
	Source Source `yaml:"-"`
	// SecretsFile is the path of tenants/<name>.secrets.sops.yaml, or empty when the
	// tenant has no secrets.
	SecretsFile string `yaml:"-"`
	// RegionSecretsFiles are the paths of tenants/<name>.<region>.secrets.sops.yaml,
	// the tenant's secrets for its apps in one region, by region.
	RegionSecretsFiles map[string]string `yaml:"-"`
}

// TenantSpec is the body of a Tenant file.
type TenantSpec struct {
	// Regions the tenant runs in; it gets a namespace in each.
	Regions []string `yaml:"regions" schema:"required"`
	// Quota is the ResourceQuota of the tenant's namespace.
	Quota *Quota `yaml:"quota,omitempty"`
	// ContainerDefaults are the LimitRange defaults for the tenant's containers.
	ContainerDefaults *ContainerDefaults `yaml:"containerDefaults,omitempty"`
	// Apps the tenant runs, each with its values. A tenant without apps still gets
	// its isolated namespace in every region.
	Apps []TenantApp `yaml:"apps,omitempty"`
	// DriftPolicy says what the daemon does when a live object no longer matches
	// the fields Meridian applied: correct (the default) applies it again, report
	// only counts and logs it. An app's own DriftPolicy overrides it.
	DriftPolicy string `yaml:"driftPolicy,omitempty" schema:"enum=correct|report"`
	// CustomResources are the custom resources (of CRDs an addon installs, such as
	// a database operator's) that the tenant's apps may manage in the tenant's
	// namespace: its Role is granted every verb on them there, and nothing else.
	CustomResources []CustomResourceGrant `yaml:"customResources,omitempty"`
	// AdoptExisting lets Meridian take over objects of the tenant's namespace unit (the
	// Namespace itself and its isolation objects) that already exist in a region but
	// that Meridian did not create; without it such an object is refused. Adopted
	// objects are released when the tenant leaves (Meridian's labels and fields
	// removed), never deleted.
	AdoptExisting bool `yaml:"adoptExisting,omitempty"`
}

// CustomResourceGrant names custom resources of one API group that a tenant's
// apps may manage in the tenant's namespace.
type CustomResourceGrant struct {
	// Group is the API group of a CustomResourceDefinition, such as
	// databases.example.com; never a Kubernetes group (*.k8s.io, the core group,
	// apps, ...), whose resources the tenant's Role already lists or leaves out on
	// purpose.
	Group string `yaml:"group" schema:"required"`
	// Resources are the resources' plural names in Group, such as [databases].
	Resources []string `yaml:"resources" schema:"required"`
}

// Drift policies of TenantSpec.DriftPolicy and TenantApp.DriftPolicy.
const (
	// DriftCorrect applies a drifted object again.
	DriftCorrect = "correct"
	// DriftReport only reports a drifted object.
	DriftReport = "report"
)

// DriftPolicyOf returns the drift policy of the tenant's app (the app's, else the
// tenant's, else DriftCorrect); an empty app is the tenant's namespace unit.
func (t *Tenant) DriftPolicyOf(app string) string {
	for _, a := range t.Spec.Apps {
		if a.Name == app && a.DriftPolicy != "" {
			return a.DriftPolicy
		}
	}
	if t.Spec.DriftPolicy != "" {
		return t.Spec.DriftPolicy
	}
	return DriftCorrect
}

// AdoptsExisting reports whether a unit of the tenant may take over objects that exist
// in a region but that Meridian did not create: an empty app is the tenant's namespace
// unit (Spec.AdoptExisting), any other the tenant's app of that name (false when the
// tenant runs no such app). An app does not inherit the tenant's setting: taking over
// objects is decided for each set of objects on its own.
func (t *Tenant) AdoptsExisting(app string) bool {
	if app == "" {
		return t.Spec.AdoptExisting
	}
	for _, a := range t.Spec.Apps {
		if a.Name == app {
			return a.AdoptExisting
		}
	}
	return false
}

// Quota caps what a tenant's namespace may consume.
type Quota struct {
	// Hard maps Kubernetes resource names (requests.cpu, pods, ...) to quantities.
	Hard map[string]string `yaml:"hard" schema:"required"`
}

// ContainerDefaults are applied to containers that do not set their own resources.
type ContainerDefaults struct {
	// Requests maps resource names (cpu, memory) to default requests.
	Requests map[string]string `yaml:"requests,omitempty"`
	// Limits maps resource names (cpu, memory) to default limits.
	Limits map[string]string `yaml:"limits,omitempty"`
}

// TenantApp is one app a tenant runs, with the tenant's values for it.
type TenantApp struct {
	// Name of an app under apps/.
	Name string `yaml:"name" schema:"required,dns1123"`
	// Regions restricts the app to these of the tenant's regions; empty means all.
	Regions []string `yaml:"regions,omitempty"`
	// ValuesFiles are values files, relative to the tenant file, merged in order.
	ValuesFiles []string `yaml:"valuesFiles,omitempty"`
	// Values override the app's defaults for this tenant, merged over ValuesFiles.
	Values Values `yaml:"values,omitempty"`
	// RegionValues override Values in one region, keyed by region name.
	RegionValues map[string]Values `yaml:"regionValues,omitempty"`
	// DriftPolicy overrides the tenant's DriftPolicy for this app: correct or report.
	DriftPolicy string `yaml:"driftPolicy,omitempty" schema:"enum=correct|report"`
	// DependsOn names other apps of the tenant that must be healthy in a region
	// before this app is applied there, such as a database before the API that
	// uses it. Each must run in every region this app runs in. While a dependency
	// is not healthy, this app's changes wait (nothing is deleted).
	DependsOn []string `yaml:"dependsOn,omitempty"`
	// AdoptExisting lets Meridian take over objects of this app in the tenant's
	// namespace that already exist in a region but that Meridian did not create;
	// without it such an object is refused. Adopted objects are released when the app
	// stops running there (Meridian's labels and fields removed), never deleted.
	AdoptExisting bool `yaml:"adoptExisting,omitempty"`
}

// Addon is addons/<name>/addon.yaml: a platform component (an ingress controller,
// cert-manager, an operator and its CRDs) that belongs to no tenant. It is applied
// as Meridian itself, may create cluster-scoped objects and write the namespaces
// it names, and is applied in a region before every tenant unit there.
type Addon struct {
	TypeMeta `yaml:",inline"`
	// Metadata names the addon.
	Metadata ObjectMeta `yaml:"metadata" schema:"required"`
	// Spec describes the addon.
	Spec AddonSpec `yaml:"spec" schema:"required"`

	// Source is where the addon was read from.
	Source Source `yaml:"-"`
}

// AddonSpec is the body of an Addon file. Exactly one of Helm and Kustomize is set.
type AddonSpec struct {
	// Helm renders the addon from a Helm chart.
	Helm *HelmSource `yaml:"helm,omitempty"`
	// Kustomize renders the addon from a Kustomize directory.
	Kustomize *KustomizeSource `yaml:"kustomize,omitempty"`
	// Namespace is where the addon's namespaced objects that name no namespace
	// land (a chart's release namespace), e.g. ingress-nginx.
	Namespace string `yaml:"namespace" schema:"required,dns1123"`
	// CreateNamespace adds Namespace to the addon's objects, for charts that do not
	// render it; leave it off when the addon renders its Namespace or the namespace
	// already exists.
	CreateNamespace bool `yaml:"createNamespace,omitempty"`
	// Namespaces are the other namespaces the addon may write objects into, such as
	// kube-system; an object in any namespace not listed (nor Namespace) is refused.
	Namespaces []string `yaml:"namespaces,omitempty"`
	// Regions selects the regions the addon runs in by name. With neither Regions
	// nor RegionSelector it runs in every region.
	Regions []string `yaml:"regions,omitempty"`
	// RegionSelector selects the regions whose metadata.labels hold every one of
	// these labels. Not set with Regions.
	RegionSelector map[string]string `yaml:"regionSelector,omitempty"`
	// ValuesFiles are values files, relative to addon.yaml, merged in order.
	ValuesFiles []string `yaml:"valuesFiles,omitempty"`
	// Values are the addon's values, merged over ValuesFiles.
	Values Values `yaml:"values,omitempty"`
	// RegionValues override Values in one region, keyed by region name.
	RegionValues map[string]Values `yaml:"regionValues,omitempty"`
	// DependsOn names other addons that must be healthy in a region before this
	// one is applied there, such as cert-manager before an ingress controller that
	// asks it for certificates. Each must run in every region this addon runs in.
	DependsOn []string `yaml:"dependsOn,omitempty"`
	// DriftPolicy says what the daemon does when a live object of the addon no
	// longer matches what Meridian applied: correct (the default) or report.
	DriftPolicy string `yaml:"driftPolicy,omitempty" schema:"enum=correct|report"`
	// AdoptExisting lets Meridian take over objects of the addon that already exist
	// in a region but that Meridian did not create (an ingress controller installed
	// by hand before Meridian); without it such an object is refused. Adopted
	// objects are released when the addon leaves the region, never deleted.
	AdoptExisting bool `yaml:"adoptExisting,omitempty"`
}

// Selects reports whether the addon runs in region r: r is listed in Regions, or
// r's labels hold every label of RegionSelector, or the addon selects no region in
// particular.
func (a *Addon) Selects(r *Region) bool {
	switch {
	case len(a.Spec.Regions) > 0:
		return slices.Contains(a.Spec.Regions, r.Metadata.Name)
	case len(a.Spec.RegionSelector) > 0:
		for k, v := range a.Spec.RegionSelector {
			if got, ok := r.Metadata.Labels[k]; !ok || got != v {
				return false
			}
		}
	}
	return true
}

// WritesNamespace reports whether the addon may write objects into namespace ns.
func (a *Addon) WritesNamespace(ns string) bool {
	return ns == a.Spec.Namespace || slices.Contains(a.Spec.Namespaces, ns)
}

// DependenciesOf returns the names of the apps the tenant's app depends on
// (TenantApp.DependsOn), or nil when the tenant runs no such app.
func (t *Tenant) DependenciesOf(app string) []string {
	for _, a := range t.Spec.Apps {
		if a.Name == app {
			return a.DependsOn
		}
	}
	return nil
}

// RegionsOf returns the regions the tenant runs its app in: the app entry's
// regions, or else all the tenant's.
func (ta TenantApp) RegionsOf(t *Tenant) []string {
	if len(ta.Regions) > 0 {
		return ta.Regions
	}
	return t.Spec.Regions
}
