package fleet

import (
	"cmp"
	"fmt"
	"io/fs"
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

	if m.Fleet != nil {
		l.checkAPIVersion(m.Fleet.TypeMeta, m.Fleet.Source)
		l.validateFleet(m.Fleet)
	}
	for _, r := range m.Regions {
		l.checkAPIVersion(r.TypeMeta, r.Source)
		l.validateRegion(r)
	}
	for _, a := range m.Apps {
		l.checkAPIVersion(a.TypeMeta, a.Source)
		l.validateApp(a)
	}
	for _, t := range m.Tenants {
		l.checkAPIVersion(t.TypeMeta, t.Source)
		l.validateTenant(t)
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
	switch {
	case spec.Helm == nil && spec.Kustomize == nil:
		l.add(src.errorAt("spec", "app has neither a Helm chart nor a Kustomize base; set spec.helm.chart (or spec.helm.repository) or spec.kustomize.path"))
	case spec.Helm != nil && spec.Kustomize != nil:
		l.add(src.errorAt("spec", "app sets both spec.helm and spec.kustomize; an app is rendered one way, keep one"))
	case spec.Helm != nil:
		l.validateHelm(src, spec.Helm)
	case spec.Kustomize != nil:
		if dir, ok := l.resolve(src, "spec.kustomize.path", spec.Kustomize.Path); ok && !l.hasAnyFile(dir, kustomizationFiles) {
			l.add(src.errorAt("spec.kustomize.path", "%s has no kustomization.yaml; point at a Kustomize directory", dir))
		}
	}
	if e := spec.Expose; e != nil && !strings.HasPrefix(e.HealthCheck.Path, "/") && e.HealthCheck.Path != "" {
		l.add(src.errorAt("spec.expose.healthCheck.path", "%q must start with /", e.HealthCheck.Path))
	}
	for i, k := range spec.AllowClusterScoped {
		if !kindPattern.MatchString(k) {
			l.add(src.errorAt(fmt.Sprintf("spec.allowClusterScoped[%d]", i), "%q is not a Kubernetes kind such as ClusterRole", k))
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

	if q := spec.Quota; q != nil {
		l.quantities(src, "spec.quota.hard", q.Hard)
	}
	if d := spec.ContainerDefaults; d != nil {
		l.quantities(src, "spec.containerDefaults.requests", d.Requests)
		l.quantities(src, "spec.containerDefaults.limits", d.Limits)
	}
	if t.SecretsFile != "" {
		l.validateSecrets(t, names)
	}
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
	file := t.SecretsFile
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
		if !slices.Contains(apps, k.Value) {
			l.add(&Error{File: file, Line: k.Line, Field: k.Value, Message: fmt.Sprintf("tenant %q runs no app %q; top-level keys of a secrets file are the tenant's app names", t.Metadata.Name, k.Value)})
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
	data, ok := l.read(file)
	if !ok {
		return nil, false
	}
	node, perr := parseYAML(file, data)
	if perr != nil {
		l.add(perr)
		return nil, false
	}
	if errs := checkShape(file, node); len(errs) > 0 {
		l.errs = append(l.errs, errs...)
		return nil, false
	}
	return node, true
}
