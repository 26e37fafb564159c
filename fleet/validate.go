package fleet

import (
	"cmp"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

var (
	awsRegionPattern    = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$`)
	hostedZonePattern   = regexp.MustCompile(`^[A-Z0-9]{1,32}$`)
	kubeVersionPattern  = regexp.MustCompile(`^v?[0-9]+\.[0-9]+(\.[0-9]+)?$`)
	kindPattern         = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	valuesKeyPattern    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	kustomizationFiles  = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}
	supportedChartRepos = []string{"http", "https", "oci"}
)

const (
	// registryPrefix is the label reconciler/dns puts in front of every record name
	// it owns, for the TXT record that marks it as Meridian's (docs/dns.md).
	registryPrefix = "_meridian."
	// maxHostnameLength is the longest DNS name an app may get: 253 characters
	// (RFC 1035, without the trailing dot), less room for registryPrefix.
	maxHostnameLength = 253 - len(registryPrefix)
)

// validate checks what single files cannot: names, references, paths and values,
// then keeps one object per name, sorted, in the model.
func (l *loader) validate() {
	m := l.model
	m.Regions = uniqueSorted(l, m.Regions, "region", func(r *Region) (string, Source) { return r.Metadata.Name, r.Source })
	m.Apps = uniqueSorted(l, m.Apps, "app", func(a *App) (string, Source) { return a.Metadata.Name, a.Source })
	m.Tenants = uniqueSorted(l, m.Tenants, "tenant", func(t *Tenant) (string, Source) { return t.Metadata.Name, t.Source })
	m.Addons = uniqueSorted(l, m.Addons, "addon", func(a *Addon) (string, Source) { return a.Metadata.Name, a.Source })

	if m.Fleet != nil {
		l.checkAPIVersion(m.Fleet.TypeMeta, m.Fleet.Source)
		l.labels(m.Fleet.Source, "metadata.labels", m.Fleet.Metadata.Labels)
		l.validateFleet(m.Fleet)
	}
	for _, r := range m.Regions {
		l.checkAPIVersion(r.TypeMeta, r.Source)
		l.labels(r.Source, "metadata.labels", r.Metadata.Labels)
		l.validateRegion(r)
	}
	for _, a := range m.Apps {
		l.checkAPIVersion(a.TypeMeta, a.Source)
		l.labels(a.Source, "metadata.labels", a.Metadata.Labels)
		l.validateApp(a)
	}
	for _, t := range m.Tenants {
		l.checkAPIVersion(t.TypeMeta, t.Source)
		l.labels(t.Source, "metadata.labels", t.Metadata.Labels)
		l.validateTenant(t)
	}
	for _, file := range l.fleetAndRegionSecrets() {
		l.validateSecretsFile(file, func(string) string { return "" })
	}
	for _, a := range m.Addons {
		l.checkAPIVersion(a.TypeMeta, a.Source)
		l.labels(a.Source, "metadata.labels", a.Metadata.Labels)
		l.validateAddon(a)
	}
}

// uniqueSorted sorts objects by name and drops (reporting) every later object that
// reuses a name.
func uniqueSorted[T any](l *loader, items []*T, noun string, id func(*T) (string, Source)) []*T {
	slices.SortStableFunc(items, func(a, b *T) int {
		na, sa := id(a)
		nb, sb := id(b)
		return cmp.Or(strings.Compare(na, nb), strings.Compare(sa.File, sb.File))
	})
	var out []*T
	for _, item := range items {
		name, src := id(item)
		if n := len(out); n > 0 {
			if prevName, prevSrc := id(out[n-1]); prevName == name {
				l.add(src.errorAt("metadata.name", "duplicate %s %q: %s already defines it; rename one of them or delete the copy", noun, name, prevSrc.Position("metadata.name")))
				continue
			}
		}
		out = append(out, item)
	}
	return out
}

func (l *loader) checkAPIVersion(tm TypeMeta, src Source) {
	if tm.APIVersion != "" && tm.APIVersion != APIVersion {
		l.add(src.errorAt("apiVersion", "%q is not supported; use %s", tm.APIVersion, APIVersion))
	}
}

// knownRegion reports whether a reference to a region resolves, and records an error
// at field when it does not.
func (l *loader) knownRegion(src Source, field, name string) bool {
	return l.known(src, field, name, KindRegion, "regions/"+name+".yaml", l.model.Region(name) != nil)
}

func (l *loader) knownApp(src Source, field, name string) bool {
	return l.known(src, field, name, KindApp, "apps/"+name+"/app.yaml", l.model.App(name) != nil)
}

func (l *loader) known(src Source, field, name, kind, where string, found bool) bool {
	if found {
		return true
	}
	if !l.broken[kind][name] { // a broken file already has its own error
		l.add(src.errorAt(field, "%s %q does not exist; create %s or fix the name", strings.ToLower(kind), name, where))
	}
	return false
}

// noDuplicates reports repeated entries of a list of names; at gives the field path
// of entry i.
func (l *loader) noDuplicates(src Source, names []string, at func(i int) string) {
	seen := map[string]int{}
	for i, n := range names {
		if first, ok := seen[n]; ok {
			l.add(src.errorAt(at(i), "%q is listed twice (also at %s); remove one", n, at(first)))
			continue
		}
		seen[n] = i
	}
}

// listItem returns the field path function of a plain list at field.
func listItem(field string) func(int) string {
	return func(i int) string { return fmt.Sprintf("%s[%d]", field, i) }
}

func (l *loader) validateFleet(f *Fleet) {
	src, spec := f.Source, f.Spec
	if problem := zoneProblem(spec.DNS.Zone); problem != "" {
		l.add(src.errorAt("spec.dns.zone", "%q is not a DNS zone name such as fleet.example.com: %s", spec.DNS.Zone, problem))
	}
	if id := spec.DNS.HostedZoneID; id != "" && !hostedZonePattern.MatchString(id) {
		l.add(src.errorAt("spec.dns.hostedZoneID", "%q is not a Route53 hosted zone id (upper-case letters and digits, such as Z0EXAMPLE0000000)", id))
	}
	for i, r := range spec.DNS.Drain {
		l.knownRegion(src, fmt.Sprintf("spec.dns.drain[%d]", i), r)
	}
	l.noDuplicates(src, spec.DNS.Drain, listItem("spec.dns.drain"))

	waveOf := map[string]string{}
	waveNames := make([]string, len(spec.Waves))
	for i, w := range spec.Waves {
		waveNames[i] = w.Name
		if len(w.Regions) == 0 {
			l.add(src.errorAt(fmt.Sprintf("spec.waves[%d].regions", i), "wave %q has no regions; list at least one or remove the wave", w.Name))
		}
		for j, r := range w.Regions {
			field := fmt.Sprintf("spec.waves[%d].regions[%d]", i, j)
			if !l.knownRegion(src, field, r) {
				continue
			}
			if other, dup := waveOf[r]; dup {
				l.add(src.errorAt(field, "region %q is already in wave %q; a region belongs to exactly one wave", r, other))
				continue
			}
			waveOf[r] = w.Name
		}
	}
	l.noDuplicates(src, waveNames, func(i int) string { return fmt.Sprintf("spec.waves[%d].name", i) })
	if len(spec.Waves) > 0 {
		for _, r := range l.model.Regions {
			if _, ok := waveOf[r.Metadata.Name]; !ok {
				l.add(src.errorAt("spec.waves", "region %q is in no wave; add it to one so that rollouts reach it", r.Metadata.Name))
			}
		}
	}

	for i, n := range spec.ReservedNamespaces {
		if !validReservedNamespace(n) {
			l.add(src.errorAt(fmt.Sprintf("spec.reservedNamespaces[%d]", i), "%q is neither a namespace name (a DNS-1123 label such as istio-system) nor a prefix of one ending in * (such as istio-*); write one of those", n))
		}
	}
	l.noDuplicates(src, spec.ReservedNamespaces, listItem("spec.reservedNamespaces"))
}

// reservedPrefixPattern is the start of a DNS-1123 label, which may end in '-'.
var reservedPrefixPattern = regexp.MustCompile(`^[a-z0-9][-a-z0-9]*$`)

// validReservedNamespace reports whether an entry of spec.reservedNamespaces is a
// namespace name or a prefix of one ending in *. The prefix is not empty: "*" alone
// would reserve every name.
func validReservedNamespace(entry string) bool {
	prefix, isPrefix := strings.CutSuffix(entry, "*")
	if !isPrefix {
		return len(validation.IsDNS1123Label(entry)) == 0
	}
	return prefix != "" && len(prefix) <= validation.DNS1123LabelMaxLength && reservedPrefixPattern.MatchString(prefix)
}

// zoneProblem says why zone (with or without its trailing dot) cannot be the fleet's
// DNS zone, or returns "": it needs two labels or more, each a lowercase DNS label of
// at most 63 characters, and at most 253 characters in all.
func zoneProblem(zone string) string {
	zone = strings.TrimSuffix(zone, ".")
	if !strings.Contains(zone, ".") {
		return "it needs a domain and its parent, at least two labels"
	}
	if problems := validation.IsDNS1123Subdomain(zone); len(problems) > 0 {
		return problems[0]
	}
	for _, label := range strings.Split(zone, ".") {
		if len(label) > validation.DNS1123LabelMaxLength {
			return fmt.Sprintf("its label %q is %d characters, more than DNS allows (%d)", label, len(label), validation.DNS1123LabelMaxLength)
		}
	}
	return ""
}

func (l *loader) validateRegion(r *Region) {
	src, spec := r.Source, r.Spec
	if spec.AWSRegion != "" && !awsRegionPattern.MatchString(spec.AWSRegion) {
		l.add(src.errorAt("spec.awsRegion", "%q is not an AWS region code such as us-east-1", spec.AWSRegion))
	}
	if v := spec.KubernetesVersion; v != "" && !kubeVersionPattern.MatchString(v) {
		l.add(src.errorAt("spec.kubernetesVersion", "%q is not a Kubernetes version such as \"1.37.2\" (quote it so YAML keeps it a string)", v))
	}
	l.validateCluster(src, spec.Cluster)
	e := spec.Endpoint
	switch e.Type {
	case EndpointAlias, EndpointCNAME:
		if e.Target != "" && len(validation.IsDNS1123Subdomain(strings.ToLower(strings.TrimSuffix(e.Target, ".")))) > 0 {
			l.add(src.errorAt("spec.endpoint.target", "%q is not a DNS name; an %s endpoint targets a host name", e.Target, e.Type))
		}
	case EndpointA:
		if a, err := netip.ParseAddr(e.Target); e.Target != "" && (err != nil || !a.Is4()) {
			l.add(src.errorAt("spec.endpoint.target", "%q is not an IPv4 address; an A endpoint targets one", e.Target))
		}
	}
	switch {
	case e.Type == EndpointAlias && e.HostedZoneID == "":
		l.add(src.errorAt("spec.endpoint", "an Alias endpoint needs hostedZoneID, the load balancer's own hosted zone id"))
	case e.Type != EndpointAlias && e.HostedZoneID != "":
		l.add(src.errorAt("spec.endpoint.hostedZoneID", "is only used with type Alias; remove it"))
	}
}

// The shapes of EKS cluster names and IAM role ARNs, as AWS documents them.
var (
	eksNamePattern = regexp.MustCompile(`^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$`)
	roleARNPattern = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
)

func (l *loader) validateCluster(src Source, c ClusterAccess) {
	var set []string
	if c.KubeconfigContext != "" {
		set = append(set, "kubeconfigContext")
	}
	if c.SecretRef != nil {
		set = append(set, "secretRef")
	}
	if c.EKS != nil {
		set = append(set, "eks")
	}
	switch len(set) {
	case 0:
		l.add(src.errorAt("spec.cluster", "says neither kubeconfigContext, secretRef nor eks; set one so Meridian can reach the cluster"))
	case 1:
	default:
		l.add(src.errorAt("spec.cluster", "sets %s; keep one", strings.Join(set, " and ")))
	}
	if r := c.SecretRef; r != nil {
		if r.Name != "" && len(validation.IsDNS1123Subdomain(r.Name)) > 0 {
			l.add(src.errorAt("spec.cluster.secretRef.name", "%q is not a Secret name (lowercase letters, digits, '-' and '.')", r.Name))
		}
		if r.Key != "" && len(validation.IsConfigMapKey(r.Key)) > 0 {
			l.add(src.errorAt("spec.cluster.secretRef.key", "%q is not a Secret key (letters, digits, '-', '_' and '.')", r.Key))
		}
	}
	if e := c.EKS; e != nil {
		if e.Name != "" && !eksNamePattern.MatchString(e.Name) {
			l.add(src.errorAt("spec.cluster.eks.name", "%q is not an EKS cluster name (up to 100 letters, digits, '-' and '_', starting with a letter or digit)", e.Name))
		}
		if e.Region != "" && !awsRegionPattern.MatchString(e.Region) {
			l.add(src.errorAt("spec.cluster.eks.region", "%q is not an AWS region code such as us-east-1; leave it out to use spec.awsRegion", e.Region))
		}
		if e.RoleARN != "" && !roleARNPattern.MatchString(e.RoleARN) {
			l.add(src.errorAt("spec.cluster.eks.roleARN", "%q is not an IAM role ARN such as arn:aws:iam::111122223333:role/meridian", e.RoleARN))
		}
	}
}

func (l *loader) validateApp(a *App) {
	src, spec := a.Source, a.Spec
	l.validateRenderSource(src, "app", spec.Helm, spec.Kustomize)
	if e := spec.Expose; e != nil && !strings.HasPrefix(e.HealthCheck.Path, "/") && e.HealthCheck.Path != "" {
		l.add(src.errorAt("spec.expose.healthCheck.path", "%q must start with /", e.HealthCheck.Path))
	}
	for i, k := range spec.AllowClusterScoped {
		if !kindPattern.MatchString(k) {
			l.add(src.errorAt(fmt.Sprintf("spec.allowClusterScoped[%d]", i), "%q is not a Kubernetes kind such as ClusterRole", k))
		}
	}
}

// validateRenderSource checks that an app or addon (noun) renders one way, from a
// chart or a Kustomize directory that exists.
func (l *loader) validateRenderSource(src Source, noun string, h *HelmSource, k *KustomizeSource) {
	switch {
	case h == nil && k == nil:
		l.add(src.errorAt("spec", "%s has neither a Helm chart nor a Kustomize base; set spec.helm.chart (or spec.helm.repository) or spec.kustomize.path", noun))
	case h != nil && k != nil:
		l.add(src.errorAt("spec", "%s sets both spec.helm and spec.kustomize; an %s is rendered one way, keep one", noun, noun))
	case h != nil:
		l.validateHelm(src, h)
	case k != nil:
		if dir, ok := l.resolve(src, "spec.kustomize.path", k.Path); ok && !l.hasAnyFile(dir, kustomizationFiles) {
			l.add(src.errorAt("spec.kustomize.path", "%s has no kustomization.yaml; point at a Kustomize directory", dir))
		}
	}
}

// validateAddon checks an addon: how it renders, the regions it selects, and the
// namespaces it writes, none of which may be a tenant's or Meridian's own.
func (l *loader) validateAddon(a *Addon) {
	src, spec := a.Source, a.Spec
	l.validateRenderSource(src, "addon", spec.Helm, spec.Kustomize)
	if len(spec.Regions) > 0 && len(spec.RegionSelector) > 0 {
		l.add(src.errorAt("spec.regionSelector", "is set with spec.regions; select regions by name or by labels, not both"))
	}
	for i, r := range spec.Regions {
		l.knownRegion(src, fmt.Sprintf("spec.regions[%d]", i), r)
	}
	l.noDuplicates(src, spec.Regions, listItem("spec.regions"))
	l.labels(src, "spec.regionSelector", spec.RegionSelector)
	if len(spec.RegionSelector) > 0 && len(l.model.Regions) > 0 && len(l.model.RegionsOf(a)) == 0 {
		l.warnings = append(l.warnings, src.errorAt("spec.regionSelector", "selects no region: no region's metadata.labels hold all of these labels; label a region or correct the selector"))
	}
	for r := range spec.RegionValues {
		region := l.model.Region(r)
		if region == nil || !a.Selects(region) {
			l.add(src.errorAt("spec.regionValues."+r, "addon %q does not run in region %q; remove these values or select the region", a.Metadata.Name, r))
		}
	}
	l.addonNamespace(a, "spec.namespace", spec.Namespace)
	for i, ns := range spec.Namespaces {
		field := fmt.Sprintf("spec.namespaces[%d]", i)
		if len(validation.IsDNS1123Label(ns)) > 0 {
			l.add(src.errorAt(field, "%q is not a namespace name (a DNS-1123 label)", ns))
			continue
		}
		if ns == spec.Namespace {
			l.add(src.errorAt(field, "%q is spec.namespace already; remove it here", ns))
			continue
		}
		l.addonNamespace(a, field, ns)
	}
	l.noDuplicates(src, spec.Namespaces, listItem("spec.namespaces"))
	l.addonDependencies(a)
}

// addonNamespace refuses a namespace an addon would write that belongs to a tenant
// or to Meridian.
func (l *loader) addonNamespace(a *Addon, field, ns string) {
	switch {
	case ns == SystemNamespace:
		l.add(a.Source.errorAt(field, "%q is Meridian's own namespace, where it keeps its inventories; an addon may not write into it", ns))
	case l.model.Tenant(ns) != nil:
		l.add(a.Source.errorAt(field, "%q is the namespace of tenant %q (%s); an addon may not write into a tenant's namespace, choose another namespace", ns, ns, l.model.Tenant(ns).Source.File))
	}
}

// labels checks a map of Kubernetes labels at field.
func (l *loader) labels(src Source, field string, m map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			l.add(src.errorAt(field+"."+k, "%q is not a label key: %s", k, errs[0]))
		}
		if errs := validation.IsValidLabelValue(m[k]); len(errs) > 0 {
			l.add(src.errorAt(field+"."+k, "%q is not a label value: %s", m[k], errs[0]))
		}
	}
}

func (l *loader) validateHelm(src Source, h *HelmSource) {
	if h.FactsKey != "" && !valuesKeyPattern.MatchString(h.FactsKey) {
		l.add(src.errorAt("spec.helm.factsKey", "%q is not a values key a template can read as .Values.<key>; use letters, digits and underscores, not starting with a digit, such as meridian", h.FactsKey))
	}
	switch {
	case h.Chart == "" && h.Repository == "":
		l.add(src.errorAt("spec.helm", "names no chart; set chart (a directory next to app.yaml) or repository, name and version"))
	case h.Chart != "" && h.Repository != "":
		l.add(src.errorAt("spec.helm.chart", "is a local chart directory, but repository is set too; use chart alone, or repository with name and version"))
	case h.Chart != "":
		if dir, ok := l.resolve(src, "spec.helm.chart", h.Chart); ok && !l.hasAnyFile(dir, []string{"Chart.yaml"}) {
			l.add(src.errorAt("spec.helm.chart", "%s has no Chart.yaml; point at a Helm chart directory", dir))
		}
		if h.Name != "" || h.Version != "" {
			l.add(src.errorAt("spec.helm", "name and version are for charts from a repository; a local chart takes its own from Chart.yaml, remove them"))
		}
	default:
		u, err := url.Parse(h.Repository)
		if err != nil || !slices.Contains(supportedChartRepos, u.Scheme) || u.Host == "" {
			l.add(src.errorAt("spec.helm.repository", "%q is not an http://, https:// or oci:// chart repository URL", h.Repository))
		}
		if h.Name == "" {
			l.add(src.errorAt("spec.helm", "a chart from a repository needs name"))
		}
		if h.Version == "" {
			l.add(src.errorAt("spec.helm", "a chart from a repository needs version, pinned so that every region renders the same chart"))
		}
	}
}

// hasAnyFile reports whether dir holds one of the names.
func (l *loader) hasAnyFile(dir string, names []string) bool {
	for _, n := range names {
		if info, err := fs.Stat(l.fsys, path.Join(dir, n)); err == nil && info.Mode().IsRegular() {
			return true
		}
	}
	return false
}

func (l *loader) validateTenant(t *Tenant) {
	src, spec := t.Source, t.Spec
	if why := l.reservedName(t.Metadata.Name); why != "" {
		l.add(src.errorAt("metadata.name", "tenant name %q is reserved: %s, and a tenant's name is its namespace in every region; choose another name (rename the file's metadata.name)", t.Metadata.Name, why))
	}
	if len(spec.Regions) == 0 {
		l.add(src.errorAt("spec.regions", "tenant runs in no region; list at least one"))
	}
	regions := map[string]bool{}
	for i, r := range spec.Regions {
		regions[r] = true
		l.knownRegion(src, fmt.Sprintf("spec.regions[%d]", i), r)
	}
	l.noDuplicates(src, spec.Regions, listItem("spec.regions"))

	names := make([]string, len(spec.Apps))
	for i, ta := range spec.Apps {
		at := fmt.Sprintf("spec.apps[%d]", i)
		names[i] = ta.Name
		known := l.knownApp(src, at+".name", ta.Name)
		for j, r := range ta.Regions {
			if !regions[r] {
				l.add(src.errorAt(fmt.Sprintf("%s.regions[%d]", at, j), "region %q is not one of the tenant's spec.regions; add it there or remove it here", r))
			}
		}
		l.noDuplicates(src, ta.Regions, listItem(at+".regions"))
		for r := range ta.RegionValues {
			if !regions[r] || (len(ta.Regions) > 0 && !slices.Contains(ta.Regions, r)) {
				l.add(src.errorAt(at+".regionValues."+r, "app %q does not run in region %q; remove these values or add the region", ta.Name, r))
			}
		}
		if known {
			l.checkDNSNames(t, ta, at)
		}
	}
	l.noDuplicates(src, names, func(i int) string { return fmt.Sprintf("spec.apps[%d].name", i) })
	l.tenantDependencies(t)

	if q := spec.Quota; q != nil {
		l.quantities(src, "spec.quota.hard", q.Hard)
	}
	l.customResources(src, spec.CustomResources)
	if d := spec.ContainerDefaults; d != nil {
		l.quantities(src, "spec.containerDefaults.requests", d.Requests)
		l.quantities(src, "spec.containerDefaults.limits", d.Limits)
	}
	if t.SecretsFile != "" {
		l.validateSecrets(t, names)
	}
	for _, region := range slices.Sorted(maps.Keys(t.RegionSecretsFiles)) {
		file := t.RegionSecretsFiles[region]
		if !regions[region] {
			l.add(&Error{File: file, Message: fmt.Sprintf("tenant %q does not run in region %q; name the file tenants/%s.<region>%s after one of its spec.regions or remove it", t.Metadata.Name, region, t.Metadata.Name, SecretsSuffix)})
			continue
		}
		var here []string
		for _, ta := range spec.Apps {
			if slices.Contains(ta.RegionsOf(t), region) {
				here = append(here, ta.Name)
			}
		}
		l.validateSecretsFile(file, func(key string) string {
			if slices.Contains(here, key) {
				return ""
			}
			return fmt.Sprintf("tenant %q runs no app %q in region %q; top-level keys of this file are the names of the tenant's apps there", t.Metadata.Name, key, region)
		})
	}
}

// builtinGroups are API groups Kubernetes serves without CRDs that contain no dot:
// a tenant may not be granted resources of them through customResources.
var builtinGroups = []string{"apps", "batch", "autoscaling", "policy", "extensions"}

// customResources checks a tenant's grants of custom resources: each names the API
// group of a CRD (not one of Kubernetes' own, whose resources the tenant's Role
// lists or leaves out on purpose) and its resources' plural names, once each.
func (l *loader) customResources(src Source, grants []CustomResourceGrant) {
	groups := make([]string, len(grants))
	for i, g := range grants {
		at := fmt.Sprintf("spec.customResources[%d]", i)
		groups[i] = g.Group
		switch {
		case g.Group == "":
		case g.Group == "k8s.io" || strings.HasSuffix(g.Group, ".k8s.io") || slices.Contains(builtinGroups, g.Group):
			l.add(src.errorAt(at+".group", "%q is a Kubernetes API group; customResources grants custom resources only, the tenant's Role already holds what it may do with Kubernetes' own", g.Group))
		case len(validation.IsDNS1123Subdomain(g.Group)) > 0 || !strings.Contains(g.Group, "."):
			l.add(src.errorAt(at+".group", "%q is not the API group of a CustomResourceDefinition, a DNS name such as databases.example.com", g.Group))
		}
		if len(g.Resources) == 0 {
			l.add(src.errorAt(at+".resources", "lists no resource; name the plural names of the group's resources, such as [databases]"))
		}
		for j, r := range g.Resources {
			if len(validation.IsDNS1123Label(r)) > 0 {
				l.add(src.errorAt(fmt.Sprintf("%s.resources[%d]", at, j), "%q is not a resource's plural name (lowercase, such as databases); wildcards are not granted", r))
			}
		}
		l.noDuplicates(src, g.Resources, listItem(at+".resources"))
	}
	l.noDuplicates(src, groups, func(i int) string { return fmt.Sprintf("spec.customResources[%d].group", i) })
}

// reservedName says why no tenant may be called name, or returns "": a tenant's name is
// its namespace in every region, so it may not be a namespace that Kubernetes, Meridian,
// a region's ingress controller or the platform (fleet.yaml's reservedNamespaces) owns.
// A region's ingress namespace is refused for tenants that do not run in the region
// too: that is the simplest rule and the safest, since the tenant may be added to the
// region at any time.
func (l *loader) reservedName(name string) string {
	switch {
	case name == "default" || strings.HasPrefix(name, "kube-"):
		return "the namespace is owned by Kubernetes"
	case name == SystemNamespace:
		return "it is Meridian's own namespace, where it keeps its inventories"
	}
	var ingress []string // the files of the regions whose ingress controller runs in it
	for _, r := range l.model.Regions {
		switch r.Spec.IngressNamespace {
		case name:
			ingress = append(ingress, r.Source.Position("spec.ingressNamespace"))
		case "":
			if name == DefaultIngressNamespace {
				ingress = append(ingress, r.Source.File+" (by default)")
			}
		}
	}
	if len(ingress) > 0 {
		return "it is the ingress controller's namespace in " + joinPositions(ingress)
	}
	if f := l.model.Fleet; f != nil {
		for i, entry := range f.Spec.ReservedNamespaces {
			prefix, isPrefix := strings.CutSuffix(entry, "*")
			if validReservedNamespace(entry) && (entry == name || (isPrefix && strings.HasPrefix(name, prefix))) {
				return fmt.Sprintf("the platform owns the namespace (%s reserves %q)", f.Source.Position(fmt.Sprintf("spec.reservedNamespaces[%d]", i)), entry)
			}
		}
	}
	return ""
}

// joinPositions lists the positions of regions' files in a sentence, naming at most
// three.
func joinPositions(positions []string) string {
	const named = 3
	switch n := len(positions); {
	case n == 1:
		return positions[0]
	case n > named:
		return fmt.Sprintf("%s and %d other regions", strings.Join(positions[:named], ", "), n-named)
	default:
		return strings.Join(positions[:n-1], ", ") + " and " + positions[n-1]
	}
}

// checkDNSNames refuses an exposed app whose names would not fit in DNS.
func (l *loader) checkDNSNames(t *Tenant, ta TenantApp, at string) {
	app := l.model.App(ta.Name)
	if app.Spec.Expose == nil || l.model.Fleet == nil {
		return
	}
	for _, r := range t.Spec.Regions {
		p := Placement{Tenant: t, Region: &Region{Metadata: ObjectMeta{Name: r}}, App: app}
		_, name, _ := p.Hostnames(l.model.Fleet.Spec.DNS.Zone)
		if len(name) > maxHostnameLength {
			l.add(t.Source.errorAt(at+".name", "the app's regional DNS name %s is %d characters, more than %d (DNS allows 253, less the %q in front of the record that marks the name as Meridian's); shorten the tenant name, the subdomain or the zone", name, len(name), maxHostnameLength, registryPrefix))
			return
		}
	}
}

func (l *loader) quantities(src Source, field string, m map[string]string) {
	for name, q := range m {
		if _, err := resource.ParseQuantity(q); err != nil {
			l.add(src.errorAt(field+"."+name, "%q is not a Kubernetes quantity such as 500m, 2 or 8Gi", q))
		}
	}
}

// validateSecrets checks that a tenant's secrets file is SOPS-encrypted and only holds
// values for the tenant's apps. It reads the file's structure, never its values.
func (l *loader) validateSecrets(t *Tenant, apps []string) {
	l.validateSecretsFile(t.SecretsFile, func(key string) string {
		if slices.Contains(apps, key) {
			return ""
		}
		return fmt.Sprintf("tenant %q runs no app %q; top-level keys of a secrets file are the tenant's app names", t.Metadata.Name, key)
	})
}

// validateSecretsFile checks that a secrets file is a SOPS-encrypted mapping whose
// top-level keys keyProblem accepts (it returns why a key is refused, or ""). It
// reads the file's structure, never its values.
func (l *loader) validateSecretsFile(file string, keyProblem func(key string) string) {
	node, ok := l.readChecked(file)
	if !ok {
		return
	}
	if node.Kind != yaml.MappingNode {
		l.add(&Error{File: file, Line: node.Line, Message: "expected a mapping of app names to values"})
		return
	}
	encrypted := false
	for i := 0; i+1 < len(node.Content); i += 2 {
		k := node.Content[i]
		if k.Value == "sops" && node.Content[i+1].Kind == yaml.MappingNode {
			encrypted = true
			continue
		}
		if problem := keyProblem(k.Value); problem != "" {
			l.add(&Error{File: file, Line: k.Line, Field: k.Value, Message: problem})
		}
	}
	if !encrypted {
		l.add(notEncrypted(file))
	}
}

// readChecked reads file as one YAML document and checks its shape (depth,
// aliases, duplicate keys) without decoding it; ok is false, with the file's
// errors added, when it cannot be used.
func (l *loader) readChecked(file string) (*yaml.Node, bool) {
	node, ok := l.document(file)
	if !ok {
		return nil, false
	}
	doc := l.doc(file)
	if doc != nil && doc.shaped {
		return node, true
	}
	if errs := checkShape(file, node); len(errs) > 0 {
		l.errs = append(l.errs, errs...)
		return nil, false
	}
	if doc != nil {
		doc.shaped = true
	}
	return node, true
}

// tenantDependencies checks the dependsOn of a tenant's apps: each names another
// app of the tenant that runs in every region the app runs in, and no app waits,
// through others, for itself.
func (l *loader) tenantDependencies(t *Tenant) {
	entries := map[string]TenantApp{}
	for _, ta := range t.Spec.Apps {
		entries[ta.Name] = ta
	}
	edges := map[string][]string{}
	for i, ta := range t.Spec.Apps {
		at := fmt.Sprintf("spec.apps[%d].dependsOn", i)
		for j, dep := range ta.DependsOn {
			field := fmt.Sprintf("%s[%d]", at, j)
			other, ok := entries[dep]
			switch {
			case dep == ta.Name:
				l.add(t.Source.errorAt(field, "app %q depends on itself; remove it", dep))
			case !ok:
				l.add(t.Source.errorAt(field, "tenant %q runs no app %q; name one of its spec.apps", t.Metadata.Name, dep))
			default:
				if missing := notIn(ta.RegionsOf(t), other.RegionsOf(t)); len(missing) > 0 {
					l.add(t.Source.errorAt(field, "app %q runs in %s, where %q does not run; a dependency must run in every region of the app that waits for it", ta.Name, strings.Join(missing, ", "), dep))
					continue
				}
				edges[ta.Name] = append(edges[ta.Name], dep)
			}
		}
		l.noDuplicates(t.Source, ta.DependsOn, listItem(at))
	}
	for i, ta := range t.Spec.Apps {
		if cycle := cycleFrom(ta.Name, edges); cycle != nil {
			l.add(t.Source.errorAt(fmt.Sprintf("spec.apps[%d].dependsOn", i), "apps wait for each other in a cycle (%s), so none would ever be applied; remove one of these dependencies", strings.Join(cycle, " → ")))
		}
	}
}

// addonDependencies checks an addon's dependsOn as tenantDependencies checks an
// app's, against the other addons.
func (l *loader) addonDependencies(a *Addon) {
	if l.addonEdges == nil {
		l.addonEdges = map[string][]string{}
		for _, other := range l.model.Addons {
			for _, dep := range other.Spec.DependsOn {
				if d := l.model.Addon(dep); d != nil && dep != other.Metadata.Name && len(notInRegions(l.model.RegionsOf(other), l.model.RegionsOf(d))) == 0 {
					l.addonEdges[other.Metadata.Name] = append(l.addonEdges[other.Metadata.Name], dep)
				}
			}
		}
	}
	for j, dep := range a.Spec.DependsOn {
		field := fmt.Sprintf("spec.dependsOn[%d]", j)
		d := l.model.Addon(dep)
		switch {
		case dep == a.Metadata.Name:
			l.add(a.Source.errorAt(field, "addon %q depends on itself; remove it", dep))
		case d == nil:
			l.known(a.Source, field, dep, KindAddon, "addons/"+dep+"/addon.yaml", false)
		default:
			if missing := notInRegions(l.model.RegionsOf(a), l.model.RegionsOf(d)); len(missing) > 0 {
				l.add(a.Source.errorAt(field, "addon %q runs in %s, where %q does not run; a dependency must run in every region of the addon that waits for it", a.Metadata.Name, strings.Join(missing, ", "), dep))
			}
		}
	}
	l.noDuplicates(a.Source, a.Spec.DependsOn, listItem("spec.dependsOn"))
	if cycle := cycleFrom(a.Metadata.Name, l.addonEdges); cycle != nil {
		l.add(a.Source.errorAt("spec.dependsOn", "addons wait for each other in a cycle (%s), so none would ever be applied; remove one of these dependencies", strings.Join(cycle, " → ")))
	}
}

// notIn returns the names of want that have lacks, in want's order.
func notIn(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// notInRegions is notIn for regions.
func notInRegions(want, have []*Region) []string {
	names := func(rs []*Region) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = r.Metadata.Name
		}
		return out
	}
	return notIn(names(want), names(have))
}

// cycleFrom returns a cycle of edges through start, as the names along it from
// start back to start, or nil when start is on none.
func cycleFrom(start string, edges map[string][]string) []string {
	seen := map[string]bool{}
	var path []string
	var walk func(n string) []string
	walk = func(n string) []string {
		path = append(path, n)
		defer func() { path = path[:len(path)-1] }()
		for _, next := range edges[n] {
			if next == start {
				return append(slices.Clone(path), start)
			}
			if !seen[next] {
				seen[next] = true
				if c := walk(next); c != nil {
					return c
				}
			}
		}
		return nil
	}
	return walk(start)
}

// fleetAndRegionSecrets lists the fleet's and regions' secrets files, which hold
// values for every placement (of the fleet, of a region): any key is theirs.
func (l *loader) fleetAndRegionSecrets() []string {
	var out []string
	if f := l.model.Fleet; f != nil && f.SecretsFile != "" {
		out = append(out, f.SecretsFile)
	}
	for _, r := range l.model.Regions {
		if r.SecretsFile != "" {
			out = append(out, r.SecretsFile)
		}
	}
	return out
}
