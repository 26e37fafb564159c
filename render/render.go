package render

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/version"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/kustomize"
	"meridian.dev/meridian/render/secrets"
)

// Options configure a Renderer.
type Options struct {
	// Helm renders Helm apps. Required when the fleet has any.
	Helm *helm.Renderer
	// Decryptor decrypts tenants' secrets files. Nil means no keys are configured:
	// placements of tenants that have a secrets file fail to render.
	Decryptor *secrets.Decryptor
	// Parallelism bounds the placements rendered at once; 0 means GOMAXPROCS.
	Parallelism int
	// CacheEntries bounds the render cache; 0 means 16384 placements.
	CacheEntries int
}

// Renderer renders snapshots. It is safe for concurrent use and keeps its cache
// across calls, so rendering a new revision only re-renders the placements whose
// inputs changed.
type Renderer struct {
	opts  Options
	cache *cache
}

// New returns a Renderer.
func New(opts Options) *Renderer {
	if opts.Parallelism <= 0 {
		opts.Parallelism = runtime.GOMAXPROCS(0)
	}
	if opts.CacheEntries <= 0 {
		opts.CacheEntries = 16384
	}
	return &Renderer{opts: opts, cache: newCache(opts.CacheEntries)}
}

// Snapshot is the fleet repository at one revision: an immutable checkout and its
// loaded model.
type Snapshot struct {
	// Dir is the absolute path of the checkout. It must not change while in use.
	Dir string
	// Revision is the commit the checkout holds; it is written on every object.
	Revision string
	// Model is the fleet loaded from Dir.
	Model *fleet.Model
}

// Filter selects placements by tenant, region and app, and addon units by region
// and addon; empty fields match all. A filter naming a tenant or an app selects
// no addon, and one naming an addon selects no tenant's unit.
type Filter struct {
	Tenant, Region, App string
	Addon               string
}

// matchNamespace reports whether the filter selects a tenant's namespace in a region.
func (f Filter) matchNamespace(tenant, region string) bool {
	return f.Addon == "" && (f.Tenant == "" || f.Tenant == tenant) && (f.Region == "" || f.Region == region)
}

// matchAddon reports whether the filter selects an addon's unit.
func (f Filter) matchAddon(p fleet.AddonPlacement) bool {
	return f.Tenant == "" && f.App == "" && (f.Region == "" || f.Region == p.Region.Metadata.Name) && (f.Addon == "" || f.Addon == p.Addon.Metadata.Name)
}

// placements returns the placements of m the filter may select: one tenant's
// when it names a tenant, without merging the values of every other placement.
func (f Filter) placements(m *fleet.Model) []fleet.Placement {
	if f.Tenant != "" {
		return m.PlacementsOf(f.Tenant)
	}
	return m.Placements()
}

// matchPlacement reports whether the filter selects a placement.
func (f Filter) matchPlacement(p fleet.Placement) bool {
	return f.matchNamespace(p.Tenant.Metadata.Name, p.Region.Metadata.Name) && (f.App == "" || f.App == p.App.Metadata.Name)
}

// Unit is what one region gets for one placement, for one tenant's namespace and
// its isolation objects (App empty), or for one addon (Addon set, no Tenant).
type Unit struct {
	// Tenant, Region and App name the placement; App is empty for a namespace unit.
	Tenant, Region, App string
	// Addon names the addon of an addon unit, which has no Tenant and no App.
	Addon string
	// Objects are the rendered objects, sorted; they may hold decrypted secrets.
	// Each has a metadata map of its own (a change of its name or namespace, or
	// Set* of its labels or annotations, is its own); everything else, labels
	// and annotations included, may be shared with the Renderer's cache and with
	// the objects of other units and passes: read them, or deep-copy one before
	// changing it.
	Objects []*unstructured.Unstructured
	// Hooks are the Helm chart's hooks (helm.sh/hook) that run at install or
	// upgrade, labelled like Objects and in the order rendered; the hooks of other
	// events are not rendered. They are applied at those events only, never to
	// correct drift, and are not part of the unit's health.
	Hooks []Hook
	// Digest identifies every input of the unit; equal digests mean equal objects.
	Digest string
	// Cached reports that the objects came from the render cache.
	Cached bool
	// AdoptExisting says the fleet lets the unit take over objects that exist in
	// the region but that Meridian did not create (fleet's adoptExisting); without
	// it applying such an object is refused.
	AdoptExisting bool
	// Source says where the objects come from, for people: the chart (with its
	// version) or the Kustomize directory; empty for a namespace unit.
	Source string
}

// All returns the unit's objects followed by its hooks' objects: everything it
// renders, for whoever shows, checks or redacts rendered output.
func (u *Unit) All() []*unstructured.Unstructured {
	if len(u.Hooks) == 0 {
		return u.Objects
	}
	out := slices.Clip(slices.Clone(u.Objects))
	for _, h := range u.Hooks {
		out = append(out, h.Object)
	}
	return out
}

// Hook is one of a Helm chart's hooks: an object applied at an event of the
// release's life rather than with the release.
type Hook = helm.Hook

// ID names the unit.
func (u *Unit) ID() fleet.UnitID {
	return fleet.UnitID{Tenant: u.Tenant, Region: u.Region, App: u.App, Addon: u.Addon}
}

// Result is a rendered snapshot.
type Result struct {
	// Revision is the snapshot's revision.
	Revision string
	// Units are every addon unit, namespace unit and placement that rendered,
	// ordered as fleet.UnitID.Compare orders them: addons first, then by tenant,
	// region and app (a tenant's namespace unit before its apps).
	Units []*Unit
	// Errors holds one error per unit that failed to render. A failed unit has no
	// Unit in Units: callers keep its last good objects, never treat it as empty.
	Errors []*UnitError
	// Renders counts the placements actually rendered (cache misses).
	Renders int

	secretValues []string
}

// UnitError is why one unit failed to render.
type UnitError struct {
	// Unit is the unit that failed.
	Unit fleet.UnitID
	// Err is the cause, naming the file or object concerned.
	Err error
}

// Error starts with the unit's ID.
func (e *UnitError) Error() string { return e.Unit.String() + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *UnitError) Unwrap() error { return e.Err }

// FileError is a unit's render failure located at the fleet file it comes from:
// the app's app.yaml for what its chart or base renders.
type FileError struct {
	// File is the fleet file, slash-separated, inside the repository.
	File string
	// Err is the cause.
	Err error
}

// Error starts with the file.
func (e *FileError) Error() string { return e.File + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// ObjectError is a problem of one rendered object.
type ObjectError struct {
	// Object is the object as ObjectRef names it: Kind/namespace/name.
	Object string
	// Err says what is wrong with it and how to fix it.
	Err error
}

// Error starts with the object.
func (e *ObjectError) Error() string { return e.Object + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *ObjectError) Unwrap() error { return e.Err }

// Failed lists the units that failed to render, sorted.
func (r *Result) Failed() []fleet.UnitID {
	ids := make([]fleet.UnitID, len(r.Errors))
	for i, e := range r.Errors {
		ids[i] = e.Unit
	}
	slices.SortFunc(ids, fleet.UnitID.Compare)
	return ids
}

// Err joins Errors, or returns nil when every unit rendered.
func (r *Result) Err() error {
	errs := make([]error, len(r.Errors))
	for i, e := range r.Errors {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// SecretValues are the decrypted values used in this result, for redacting output
// meant for people. Placements served from the cache contribute none: their secrets
// were not decrypted in this call, so callers that show output should render with a
// fresh Renderer or redact Secret objects as a whole too.
func (r *Result) SecretValues() []string { return r.secretValues }

// IsSecret reports whether o is a core Secret, whose values Meridian never shows.
func IsSecret(o *unstructured.Unstructured) bool {
	return o != nil && o.GetKind() == "Secret" && o.GroupVersionKind().Group == ""
}

// Shown returns the values that showing the result must hide: those decrypted
// for it (SecretValues), and every value of the Secrets its units render,
// hooks' included, since units served from the render cache were decrypted
// earlier.
func (r *Result) Shown() []string {
	values := slices.Clone(r.secretValues)
	for _, u := range r.Units {
		for _, o := range u.All() {
			if !IsSecret(o) {
				continue
			}
			if m, ok := o.Object["stringData"].(map[string]any); ok {
				values = append(values, secrets.Leaves(m)...)
			}
			data, _ := o.Object["data"].(map[string]any)
			for _, v := range data {
				if enc, ok := v.(string); ok {
					if plain, err := base64.StdEncoding.DecodeString(enc); err == nil {
						values = append(values, string(plain))
					}
				}
			}
		}
	}
	return values
}

// Render renders every placement of snap that filter selects, in parallel, and the
// namespace unit of every selected tenant × region. A placement that fails does not
// stop the others.
func (r *Renderer) Render(ctx context.Context, snap Snapshot, filter Filter) (*Result, error) {
	if !strings.HasPrefix(snap.Dir, "/") {
		return nil, fmt.Errorf("snapshot directory %q is not an absolute path", snap.Dir)
	}
	m := snap.Model
	run := &renderRun{r: r, snap: snap, zone: m.Fleet.Spec.DNS.Zone, hashes: newFileHashes(snap.Dir), secretFiles: map[string]*secretsFile{}, charts: map[string]*chartDigest{}, sources: map[string]string{}}
	defer run.hashes.close()
	result := &Result{Revision: snap.Revision}

	// Namespace units first: they are cheap, and cached like placements.
	for _, t := range m.Tenants {
		for _, regionName := range t.Spec.Regions {
			if !filter.matchNamespace(t.Metadata.Name, regionName) {
				continue
			}
			u, err := run.namespaceUnit(t, m.Region(regionName))
			if err != nil {
				result.Errors = append(result.Errors, &UnitError{Unit: fleet.NamespaceUnit(t.Metadata.Name, regionName), Err: err})
				continue
			}
			result.Units = append(result.Units, u)
		}
	}

	var jobs []job
	for _, p := range m.AddonPlacements() {
		if filter.matchAddon(p) {
			jobs = append(jobs, run.addonJob(p))
		}
	}
	for _, p := range filter.placements(m) {
		if filter.matchPlacement(p) {
			jobs = append(jobs, run.placementJob(p))
		}
	}
	units := make([]*Unit, len(jobs))
	errs := make([]*UnitError, len(jobs))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(r.opts.Parallelism, len(jobs)) {
		wg.Go(func() {
			for i := range work {
				var err error
				if units[i], err = run.render(ctx, jobs[i]); err != nil {
					errs[i] = &UnitError{Unit: jobs[i].id, Err: err}
				}
			}
		})
	}
	for i := range jobs {
		if ctx.Err() != nil {
			errs[i] = &UnitError{Unit: jobs[i].id, Err: ctx.Err()}
			continue
		}
		work <- i
	}
	close(work)
	wg.Wait()

	for i, u := range units {
		if errs[i] != nil {
			result.Errors = append(result.Errors, errs[i])
			continue
		}
		if !u.Cached {
			result.Renders++
		}
		result.Units = append(result.Units, u)
	}
	slices.SortStableFunc(result.Units, func(a, b *Unit) int { return a.ID().Compare(b.ID()) })
	result.Units, result.Errors = shared(result.Units, result.Errors)
	result.secretValues = run.secretValues()
	return result, nil
}

// shared fails every unit that renders an object another unit of its region
// renders too: one object cannot belong to two units, and applying both would
// have each take it over from the other. The error names the object and the
// other unit.
func shared(units []*Unit, errs []*UnitError) ([]*Unit, []*UnitError) {
	first := map[string]*Unit{} // region and object → the first unit to render it
	failed := map[fleet.UnitID]*UnitError{}
	for _, u := range units {
		for _, o := range u.All() {
			gvk := o.GroupVersionKind()
			key := strings.Join([]string{u.Region, gvk.Group, gvk.Kind, o.GetNamespace(), o.GetName()}, "\x00")
			other, ok := first[key]
			if !ok {
				first[key] = u
				continue
			}
			for _, pair := range [][2]*Unit{{u, other}, {other, u}} {
				if failed[pair[0].ID()] == nil {
					failed[pair[0].ID()] = &UnitError{Unit: pair[0].ID(), Err: &ObjectError{Object: ObjectRef(o),
						Err: fmt.Errorf("unit %s renders it too; one object cannot belong to two units: rename it in one of them", pair[1].ID())}}
				}
			}
		}
	}
	if len(failed) == 0 {
		return units, errs
	}
	var kept []*Unit
	for _, u := range units {
		if e := failed[u.ID()]; e != nil {
			errs = append(errs, e)
			continue
		}
		kept = append(kept, u)
	}
	return kept, errs
}

// renderRun is one Render call: the snapshot, a memo of file digests (the snapshot
// is immutable) and each tenant's secrets, decrypted at most once and only when a
// placement of the tenant misses the cache.
type renderRun struct {
	r      *Renderer
	snap   Snapshot
	zone   string
	hashes *fileHashes

	mu          sync.Mutex
	secretFiles map[string]*secretsFile // by file
	charts      map[string]*chartDigest // by app directory
	sources     map[string]string       // by chart directory (sourceOf)
}

type chartDigest struct {
	once   sync.Once
	digest string
	err    error
}

// chartDigest returns the digest of an app's chart, computed once per Render: every
// placement of the app shares the chart, and the snapshot does not change.
func (run *renderRun) chartDigest(ctx context.Context, req helm.Request) (string, error) {
	run.mu.Lock()
	d, ok := run.charts[req.AppDir]
	if !ok {
		d = &chartDigest{}
		run.charts[req.AppDir] = d
	}
	run.mu.Unlock()
	d.once.Do(func() { d.digest, d.err = run.r.opts.Helm.Digest(ctx, req) })
	return d.digest, d.err
}

// secretsFile is one SOPS file of the snapshot: read once, decrypted at most once.
type secretsFile struct {
	// Set under renderRun.mu when first asked for, then read-only.
	ciphertext []byte
	digest     string
	readErr    error

	once   sync.Once
	values map[string]any // set by once
	err    error          // set by once
}

// secretsOf reads a secrets file of the snapshot (not decrypting it).
func (run *renderRun) secretsOf(file string) *secretsFile {
	run.mu.Lock()
	s, ok := run.secretFiles[file]
	if !ok {
		s = &secretsFile{}
		run.secretFiles[file] = s
		s.ciphertext, s.readErr = readInSnapshot(run.snap.Dir, file)
		s.digest = digestBytes(s.ciphertext)
	}
	run.mu.Unlock()
	return s
}

// decrypted returns a secrets file's decrypted values, decrypting it once; an
// empty file name has none.
func (run *renderRun) decrypted(ctx context.Context, file string) (map[string]any, error) {
	if file == "" {
		return nil, nil
	}
	s := run.secretsOf(file)
	if s.readErr != nil {
		return nil, s.readErr
	}
	s.once.Do(func() {
		if run.r.opts.Decryptor == nil {
			s.err = fmt.Errorf("%s: no SOPS keys are configured; give Meridian the key this file is encrypted to (--key-file, SOPS_AGE_KEY_FILE)", file)
			return
		}
		s.values, s.err = run.r.opts.Decryptor.DecryptContext(ctx, file, s.ciphertext)
	})
	return s.values, s.err
}

// secretFilesOf lists the secrets files a placement's values come from, in the
// order of the precedence: fleet, region, tenant, tenant × region (empty names
// for those it has not).
func secretFilesOf(p fleet.Placement, m *fleet.Model) [4]string {
	return [4]string{m.Fleet.SecretsFile, p.Region.SecretsFile, p.Tenant.SecretsFile, p.Tenant.RegionSecretsFiles[p.Region.Metadata.Name]}
}

// secretsDigest identifies the ciphertext of a placement's secrets files (never
// their values), for its cache key.
func (run *renderRun) secretsDigest(files [4]string) (string, error) {
	var parts []string
	for _, f := range files {
		if f == "" {
			parts = append(parts, "")
			continue
		}
		s := run.secretsOf(f)
		if s.readErr != nil {
			return "", s.readErr
		}
		parts = append(parts, s.digest)
	}
	if strings.Join(parts, "") == "" {
		return "", nil
	}
	if parts[0]+parts[1]+parts[3] == "" {
		return parts[2], nil // the tenant's file alone: the digest it always had
	}
	return digestBytes([]byte(strings.Join(parts, "\x00"))), nil
}

// placementSecrets decrypts a placement's secrets files and returns the values of
// each layer: the fleet's and region's whole, the tenant's for the app.
func (run *renderRun) placementSecrets(ctx context.Context, p fleet.Placement, files [4]string) (fleet.Secrets, bool, error) {
	var out [4]map[string]any
	some := false
	for i, f := range files {
		v, err := run.decrypted(ctx, f)
		if err != nil {
			return fleet.Secrets{}, false, err
		}
		if i >= 2 { // tenants' files are keyed by app
			v, _ = v[p.App.Metadata.Name].(map[string]any)
		}
		out[i] = v
		some = some || len(v) > 0
	}
	return fleet.Secrets{Fleet: out[0], Region: out[1], Tenant: out[2], TenantRegion: out[3]}, some, nil
}

func (run *renderRun) secretValues() []string {
	run.mu.Lock()
	defer run.mu.Unlock()
	var all []string
	for _, s := range run.secretFiles {
		s.once.Do(func() {}) // every decryption has finished; values is safe to read
		if s.values != nil {
			all = append(all, secrets.Leaves(s.values)...)
		}
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// PlacementValues are the values a placement's chart or substitution sees,
// without its secrets: the fleet's, and the placement's facts only where the App
// asks for them — under its chart's facts key, or as substitution variables.
func PlacementValues(p fleet.Placement, zone string) fleet.Values {
	return withFacts(p.App.Spec.Helm, p.App.Spec.Kustomize, func() map[string]any { return Facts(p, zone) }, p.Values)
}

// withFacts adds a unit's facts to values where its source asks for them: under
// its chart's facts key, or as substitution variables.
func withFacts(h *fleet.HelmSource, k *fleet.KustomizeSource, facts func() map[string]any, values fleet.Values) fleet.Values {
	switch {
	case h != nil && h.FactsKey != "":
		return fleet.Merge(values, fleet.Values{h.FactsKey: facts()})
	case k != nil && k.Substitute:
		return fleet.Merge(values, fleet.Values{FactsKey: facts()})
	}
	return values
}

// job is one unit to render from a chart or a Kustomize directory: a tenant's
// placement or an addon in a region.
type job struct {
	id      fleet.UnitID
	appFile string // app.yaml or addon.yaml
	helm    *fleet.HelmSource
	kust    *fleet.KustomizeSource
	// namespace is the chart's release namespace, and where namespaced objects
	// that name none land.
	namespace   string
	kubeVersion string
	// values are the unit's values with the facts its source asks for, without
	// secrets.
	values fleet.Values
	// scope is what the unit may write, part of its cache key: the placement's
	// allowed cluster-scoped kinds, or the addon's namespaces.
	scope []string
	// secretsDigest returns the digest of the secrets files the unit's values
	// come from (never their values); withSecrets the unit's values with its
	// decrypted secrets, each merged at its place in the precedence.
	secretsDigest func() (string, error)
	withSecrets   func(ctx context.Context) (fleet.Values, error)
	// confine checks and completes the rendered objects' namespaces.
	confine func(objects []*unstructured.Unstructured) error
	// extra are objects Meridian adds to what the source renders (an addon's
	// Namespace when it asks Meridian to create it).
	extra []*unstructured.Unstructured
	adopt bool
}

// placementJob is the job of a tenant's placement.
func (run *renderRun) placementJob(p fleet.Placement) job {
	files := secretFilesOf(p, run.snap.Model)
	values := PlacementValues(p, run.zone)
	return job{
		id: p.ID(), appFile: p.App.Source.File, helm: p.App.Spec.Helm, kust: p.App.Spec.Kustomize,
		namespace: p.Namespace, kubeVersion: p.Region.Spec.KubernetesVersion,
		values: values, scope: p.App.Spec.AllowClusterScoped,
		secretsDigest: func() (string, error) { return run.secretsDigest(files) },
		withSecrets: func(ctx context.Context) (fleet.Values, error) {
			sec, some, err := run.placementSecrets(ctx, p, files)
			if err != nil || !some {
				return values, err
			}
			return withFacts(p.App.Spec.Helm, p.App.Spec.Kustomize, func() map[string]any { return Facts(p, run.zone) }, p.ValuesWith(sec)), nil
		},
		confine: func(objects []*unstructured.Unstructured) error {
			return confine(objects, p.Namespace, p.App.Spec.AllowClusterScoped)
		},
		adopt: p.Tenant.AdoptsExisting(p.App.Metadata.Name),
	}
}

// addonJob is the job of an addon in a region.
func (run *renderRun) addonJob(p fleet.AddonPlacement) job {
	a := p.Addon
	values := withFacts(a.Spec.Helm, a.Spec.Kustomize, func() map[string]any { return AddonFacts(p, run.zone) }, p.Values)
	j := job{
		id: p.ID(), appFile: a.Source.File, helm: a.Spec.Helm, kust: a.Spec.Kustomize,
		namespace: a.Spec.Namespace, kubeVersion: p.Region.Spec.KubernetesVersion,
		values: values, scope: append([]string{a.Spec.Namespace}, a.Spec.Namespaces...),
		secretsDigest: func() (string, error) { return "", nil },
		withSecrets:   func(context.Context) (fleet.Values, error) { return values, nil },
		confine: func(objects []*unstructured.Unstructured) error {
			return confineAddon(objects, a, run.snap.Model.Tenant)
		},
		adopt: a.Spec.AdoptExisting,
	}
	if a.Spec.CreateNamespace {
		ns := &unstructured.Unstructured{}
		ns.SetAPIVersion("v1")
		ns.SetKind("Namespace")
		ns.SetName(a.Spec.Namespace)
		j.extra = append(j.extra, ns)
	}
	return j
}

// render renders one job, from the cache when its inputs are unchanged.
func (run *renderRun) render(ctx context.Context, j job) (*Unit, error) {
	secretsDigest, err := j.secretsDigest()
	if err != nil {
		return nil, err
	}
	appDir := path.Dir(j.appFile)
	key := cacheKey{
		Meridian:    version.Version,
		Placement:   j.id.String(),
		AppDir:      appDir,
		Helm:        j.helm,
		Kustomize:   j.kust,
		Allow:       j.scope,
		KubeVersion: j.kubeVersion,
		Values:      j.values,
		Secrets:     secretsDigest,
	}

	var (
		objects []*unstructured.Unstructured
		inputs  map[string]string
		digest  string
	)
	switch {
	case j.helm != nil:
		req := helm.Request{
			Root: run.snap.Dir, AppDir: appDir, Source: *j.helm,
			ReleaseName: j.id.Name(), Namespace: j.namespace, KubeVersion: j.kubeVersion,
		}
		if key.Chart, err = run.chartDigest(ctx, req); err != nil {
			return nil, err
		}
		if digest, err = key.digest(); err != nil {
			return nil, err
		}
		if objs, unitDig, ok := run.r.cache.get(digest, run.hashes); ok {
			return run.unit(j, objs, unitDig, true), nil
		}
		if req.Values, err = j.withSecrets(ctx); err != nil {
			return nil, err
		}
		if objects, err = run.r.opts.Helm.Render(ctx, req); err != nil {
			return nil, err
		}
	case j.kust != nil:
		if digest, err = key.digest(); err != nil {
			return nil, err
		}
		if objs, unitDig, ok := run.r.cache.get(digest, run.hashes); ok {
			return run.unit(j, objs, unitDig, true), nil
		}
		withSecrets, err := j.withSecrets(ctx)
		if err != nil {
			return nil, err
		}
		req := kustomize.Request{Root: run.snap.Dir, Dir: path.Join(appDir, j.kust.Path)}
		if j.kust.Substitute {
			req.Vars = substitutionVars(withSecrets)
		}
		res, err := kustomize.Build(ctx, req)
		if err != nil {
			return nil, err
		}
		objects = res.Objects
		inputs = map[string]string{}
		for _, f := range res.Inputs {
			if inputs[f], err = run.hashes.file(f); err != nil {
				return nil, err
			}
		}
		for _, l := range res.Symlinks { // a retargeted symlink changes the build too
			if inputs[linkPrefix+l], err = run.hashes.file(linkPrefix + l); err != nil {
				return nil, err
			}
		}
	default:
		return nil, &FileError{File: j.appFile, Err: errors.New("neither helm nor kustomize is set")}
	}

	for _, e := range j.extra {
		if !slices.ContainsFunc(objects, func(o *unstructured.Unstructured) bool {
			return o.GroupVersionKind() == e.GroupVersionKind() && o.GetName() == e.GetName()
		}) {
			objects = append(objects, e.DeepCopy())
		}
	}
	if err := j.confine(objects); err != nil {
		return nil, &FileError{File: j.appFile, Err: err}
	}
	sortObjects(objects)
	return run.unit(j, objects, run.r.cache.put(digest, unitDigest(digest, inputs), objects, inputs), false), nil
}

// namespaceUnit returns a tenant's namespace unit in a region, from the cache when
// the inputs of its isolation objects are unchanged (the same entry serves each
// region where they are the same).
func (run *renderRun) namespaceUnit(t *fleet.Tenant, r *fleet.Region) (*Unit, error) {
	in := isolationOf(t, r)
	key, err := in.digest()
	if err != nil {
		return nil, err
	}
	j := job{id: fleet.NamespaceUnit(t.Metadata.Name, r.Metadata.Name), adopt: t.AdoptsExisting("")}
	if objects, digest, ok := run.r.cache.get(key, run.hashes); ok {
		return run.unit(j, objects, digest, true), nil
	}
	objects, err := isolation(t, in)
	if err != nil {
		return nil, err
	}
	sortObjects(objects)
	// The unit's digest is that of its objects before the revision is written on
	// them: a new commit that does not change the namespace leaves it alone.
	return run.unit(j, objects, run.r.cache.put(key, digestObjects(objects), objects, nil), false), nil
}

// unit labels copies of the cached objects with the snapshot's revision. The copies
// have metadata of their own and share the rest with the cache: a pass holds the
// fleet's specs once, not once more per pass.
func (run *renderRun) unit(j job, objects []*unstructured.Unstructured, digest string, cached bool) *Unit {
	out := make([]*unstructured.Unstructured, len(objects))
	for i, o := range objects {
		out[i] = withOwnMetadata(o)
	}
	label(out, j.id, run.snap.Revision)
	shareMetadataMaps(out)
	u := &Unit{Tenant: j.id.Tenant, Region: j.id.Region, App: j.id.App, Addon: j.id.Addon, Objects: out, Digest: digest, Cached: cached, AdoptExisting: j.adopt, Source: run.sourceOf(j)}
	if j.helm != nil {
		u.Objects, u.Hooks = helm.Hooks(out)
	}
	return u
}

// shareMetadataMaps makes the equal labels and annotations of a unit's objects
// one map each: a chart gives most of its objects the same labels, and label the
// same unit's.
func shareMetadataMaps(objects []*unstructured.Unstructured) {
	in := newInterner()
	for _, o := range objects {
		md, _ := o.Object["metadata"].(map[string]any)
		for _, field := range []string{"labels", "annotations"} {
			if v, ok := md[field]; ok {
				md[field] = in.intern(v)
			}
		}
	}
}

// withOwnMetadata returns a copy of o whose top level and metadata are its own, for
// label to write; everything below them is o's.
func withOwnMetadata(o *unstructured.Unstructured) *unstructured.Unstructured {
	c := maps.Clone(o.Object)
	if md, ok := c["metadata"].(map[string]any); ok {
		c["metadata"] = maps.Clone(md)
	}
	return &unstructured.Unstructured{Object: c}
}

// readInSnapshot reads a file of the snapshot through an os.Root, at most
// fleet.MaxFileBytes of it, as the fleet loader does: only a regular file, and the
// size checked while reading, not only by what the file claims.
func readInSnapshot(dir, file string) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	info, err := root.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: is not a regular file", file)
	}
	f, err := root.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, fleet.MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(data) > fleet.MaxFileBytes {
		return nil, fmt.Errorf("%s: file is more than the limit of %d bytes; split it or move data out of the fleet repository", file, fleet.MaxFileBytes)
	}
	return data, nil
}
