package fleet

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// The layout of a fleet repository.
const (
	FleetFile     = "fleet.yaml"
	RegionsDir    = "regions"
	AppsDir       = "apps"
	AppFile       = "app.yaml"
	TenantsDir    = "tenants"
	AddonsDir     = "addons"
	AddonFile     = "addon.yaml"
	SecretsSuffix = ".secrets.sops.yaml"
	// FleetSecretsFile holds SOPS-encrypted values for every placement.
	FleetSecretsFile = "fleet" + SecretsSuffix
)

// MaxFileBytes bounds every file the loader reads, so a huge file is refused with a
// clear error instead of exhausting memory.
const MaxFileBytes = 4 << 20

// The limits of one load besides MaxFileBytes, far above any real fleet: how many
// files it reads, how many bytes they add up to, and how many YAML nodes they expand
// to in all (each document is bounded on its own too; see MaxDepth).
const (
	MaxFiles      = 20_000
	MaxTotalBytes = 256 << 20
	maxLoadVisits = 20_000_000
)

// limits are the bounds of one load; tests shrink them.
type limits struct {
	fileBytes, files, totalBytes, visits int
}

var defaultLimits = limits{fileBytes: MaxFileBytes, files: MaxFiles, totalBytes: MaxTotalBytes, visits: maxLoadVisits}

// Model is a loaded and validated fleet repository.
type Model struct {
	// Fleet is fleet.yaml.
	Fleet *Fleet
	// Regions, Apps and Tenants are sorted by name.
	Regions []*Region
	Apps    []*App
	Tenants []*Tenant
	// Addons are the platform addons under addons/, sorted by name.
	Addons []*Addon
	// Warnings are problems that do not stop the fleet from loading, such as a value
	// that looks like a secret written in plain text.
	Warnings ErrorList

	valuesFiles map[string]Values // loaded values files, by repository path
}

// Region returns the region called name, or nil.
func (m *Model) Region(name string) *Region { return find(m.Regions, name, (*Region).name) }

// App returns the app called name, or nil.
func (m *Model) App(name string) *App { return find(m.Apps, name, (*App).name) }

// Tenant returns the tenant called name, or nil.
func (m *Model) Tenant(name string) *Tenant { return find(m.Tenants, name, (*Tenant).name) }

// Addon returns the addon called name, or nil.
func (m *Model) Addon(name string) *Addon { return find(m.Addons, name, (*Addon).name) }

// AddonsOf returns the addons that run in region, sorted by name.
func (m *Model) AddonsOf(region *Region) []*Addon {
	var out []*Addon
	for _, a := range m.Addons {
		if a.Selects(region) {
			out = append(out, a)
		}
	}
	return out
}

// RegionsOf returns the regions addon a runs in, sorted by name.
func (m *Model) RegionsOf(a *Addon) []*Region {
	var out []*Region
	for _, r := range m.Regions {
		if a.Selects(r) {
			out = append(out, r)
		}
	}
	return out
}

func (a *Addon) name() string  { return a.Metadata.Name }
func (r *Region) name() string { return r.Metadata.Name }
func (a *App) name() string    { return a.Metadata.Name }
func (t *Tenant) name() string { return t.Metadata.Name }

func find[T any](items []*T, name string, nameOf func(*T) string) *T {
	i, ok := slices.BinarySearchFunc(items, name, func(item *T, name string) int { return strings.Compare(nameOf(item), name) })
	if !ok {
		return nil
	}
	return items[i]
}

// Load reads the fleet repository at the root of fsys. It reads every file even when
// some are wrong, and returns an ErrorList holding every problem found; the Model is
// returned only when there is none.
//
// fsys should refuse paths that leave the repository (os.Root's FS does, including
// through symlinks); Load itself refuses ".." in every path a file names.
func Load(fsys fs.FS) (*Model, error) {
	return load(fsys, defaultLimits)
}

func load(fsys fs.FS, lim limits) (*Model, error) {
	return loadParsed(fsys, lim, nil)
}

// loadParsed is load with the YAML documents a previous load parsed, by file
// and content (nil for none); it fills next with the documents it parsed.
func loadParsed(fsys fs.FS, lim limits, parsed *parseMemo) (*Model, error) {
	l := &loader{fsys: fsys, limits: lim, model: &Model{valuesFiles: map[string]Values{}}, broken: map[string]map[string]bool{}, parsed: parsed}
	l.loadFleet()
	l.loadRegions()
	l.loadApps()
	l.loadTenants()
	l.loadAddons()
	l.validate()
	l.warnValues()
	l.warnings.sort()
	l.model.Warnings = l.warnings
	if len(l.errs) > 0 {
		errs := l.errs.firstPerField()
		errs.sort()
		return nil, errs
	}
	return l.model, nil
}

// LoadDir loads the fleet repository in directory dir. Files are read through an
// os.Root, so no path or symlink in the repository can reach outside it.
func LoadDir(dir string) (*Model, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open fleet repository: %w", err)
	}
	defer root.Close()
	return Load(root.FS())
}

// loader carries one Load: the files read so far and every error found.
type loader struct {
	fsys     fs.FS
	model    *Model
	errs     ErrorList
	warnings ErrorList
	// broken holds, per kind, the file base names of files that could not be parsed
	// at all, so that references to them do not add a second, misleading error.
	broken map[string]map[string]bool

	limits limits
	// files, bytes and visits count what was read and decoded so far, against limits.
	files, bytes, visits int
	overVisits           bool

	// addonEdges are the addons' valid dependencies, by addon, built once for
	// the cycle checks of every addon.
	addonEdges map[string][]string

	// parsed holds the documents of a previous load of the same repository
	// (Loader); nil parses every file.
	parsed *parseMemo
}

// document reads file and parses it as one YAML document; ok is false, with
// the file's error added, when it cannot. A file whose content ID (Loader.Load)
// is the one it had at the previous load is not read: its document is that
// load's, counted against the limits as if read.
func (l *loader) document(file string) (*yaml.Node, bool) {
	if p := l.parsed.unchanged(file); p != nil {
		if !l.countFile(file) || !l.countBytes(file, p.size) {
			return nil, false
		}
		l.parsed.next[file] = p
		return p.node, true
	}
	data, ok := l.read(file)
	if !ok {
		return nil, false
	}
	node, perr := l.parse(file, data)
	if perr != nil {
		l.add(perr)
		return nil, false
	}
	return node, true
}

// parse parses a file's data as one YAML document, taking the document of a
// previous load when the file had the same content then.
func (l *loader) parse(file string, data []byte) (*yaml.Node, *Error) {
	if l.parsed == nil {
		return parseYAML(file, data)
	}
	sum := sha256.Sum256(data)
	id := l.parsed.ids[file]
	if p, ok := l.parsed.prev[file]; ok && p.sum == sum {
		p.id = id
		l.parsed.next[file] = p
		return p.node, nil
	}
	node, perr := parseYAML(file, data)
	if perr == nil {
		l.parsed.next[file] = &parsedDoc{sum: sum, id: id, size: len(data), node: node}
	}
	return node, perr
}

// unchanged returns the previous load's document of file when the file's
// content ID says it did not change since; nil otherwise, and without a Loader.
func (m *parseMemo) unchanged(file string) *parsedDoc {
	if m == nil {
		return nil
	}
	id := m.ids[file]
	if p := m.prev[file]; id != "" && p != nil && p.id == id {
		return p
	}
	return nil
}

// doc returns what this load and the previous ones learned of file's document,
// parsed by parse; nil without a Loader.
func (l *loader) doc(file string) *parsedDoc {
	if l.parsed == nil {
		return nil
	}
	return l.parsed.next[file]
}

// parseMemo is the documents one load parsed (prev) for the next (next), by
// file. A document is only read once parsed, by every load alike.
type parseMemo struct {
	prev, next map[string]*parsedDoc
	// ids are the content IDs of this load's files (Loader.Load), or nil.
	ids map[string]string
}

// parsedDoc is a file's document and the digest of the content it was parsed
// from, and what was found of that content without error: its object as
// decoded, and that its shape was checked.
type parsedDoc struct {
	sum  [sha256.Size]byte
	id   string // the content ID the file had, "" when not known
	size int    // bytes
	node *yaml.Node

	// decoded is the object decoded from node without any error (a struct
	// value, copied into each load's model), with its Source and the nodes
	// the decoder visited; nil until then.
	decoded any
	src     Source
	visits  int
	// shaped says checkShape found nothing wrong with node.
	shaped bool
}

// Loader loads revisions of one fleet repository as LoadDir does, parsing and
// decoding again only the files whose content changed since its previous load:
// at thousands of placements, parsing and decoding every tenant's files is most
// of a load. The model is the same as LoadDir's, but the models of successive
// loads share the maps and slices decoded from a file that did not change:
// treat a model as read-only. One load at a time.
type Loader struct {
	mu   sync.Mutex
	docs map[string]*parsedDoc
}

// LoadDir loads the fleet repository in directory dir, as the package's LoadDir
// does.
func (ld *Loader) LoadDir(dir string) (*Model, error) {
	return ld.Load(dir, nil)
}

// Load loads the fleet repository in directory dir, as LoadDir does. ids, when
// not nil, identify the content of dir's regular files by slash-separated path
// (a Git source's blob hash and mode, sources.Snapshot.Files): a file whose ID
// is the one it had at the previous load is not read again, its document and
// object are the previous load's. A file without an ID is read.
func (ld *Loader) Load(dir string, ids map[string]string) (*Model, error) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open fleet repository: %w", err)
	}
	defer root.Close()
	memo := &parseMemo{prev: ld.docs, next: map[string]*parsedDoc{}, ids: ids}
	m, err := loadParsed(root.FS(), defaultLimits, memo)
	ld.docs = memo.next
	return m, err
}

func (l *loader) add(err *Error) { l.errs = append(l.errs, err) }

// read returns a file's bytes, or records why it cannot. Only regular files are read
// (a FIFO would block the load), at most limits.fileBytes of each, checked again while
// reading, and no more files and bytes in all than the load's limits.
func (l *loader) read(file string) ([]byte, bool) {
	if !l.countFile(file) {
		return nil, false
	}
	info, err := fs.Stat(l.fsys, file)
	if err != nil {
		l.add(&Error{File: file, Message: "cannot read: " + unwrapPathError(err)})
		return nil, false
	}
	if !info.Mode().IsRegular() {
		l.add(&Error{File: file, Message: fmt.Sprintf("is not a regular file (%s); fleet files are plain files", describeMode(info.Mode()))})
		return nil, false
	}
	if info.Size() > int64(l.limits.fileBytes) {
		l.add(l.tooBig(file, info.Size()))
		return nil, false
	}
	f, err := l.fsys.Open(file)
	if err != nil {
		l.add(&Error{File: file, Message: "cannot read: " + unwrapPathError(err)})
		return nil, false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(l.limits.fileBytes)+1))
	if err != nil {
		l.add(&Error{File: file, Message: "cannot read: " + unwrapPathError(err)})
		return nil, false
	}
	if len(data) > l.limits.fileBytes { // it grew, or its size was not known
		l.add(&Error{File: file, Message: fmt.Sprintf("file is more than the limit of %d bytes; split it or move data out of the fleet repository", l.limits.fileBytes)})
		return nil, false
	}
	if !l.countBytes(file, len(data)) {
		return nil, false
	}
	return data, true
}

// countFile counts file against the load's limit of files, and reports whether
// it may be read: under that limit, and under the limit of bytes so far.
func (l *loader) countFile(file string) bool {
	if l.files++; l.files > l.limits.files {
		if l.files == l.limits.files+1 {
			l.add(&Error{File: file, Message: fmt.Sprintf("the repository holds more than %d fleet files; this one and the ones after it are not read; move files out of the fleet repository", l.limits.files)})
		}
		return false
	}
	return l.bytes <= l.limits.totalBytes // else reported with the file that crossed the limit
}

// countBytes counts file's size against the load's limit of bytes, and reports
// whether the load is still under it.
func (l *loader) countBytes(file string, size int) bool {
	if l.bytes += size; l.bytes > l.limits.totalBytes {
		l.add(&Error{File: file, Message: fmt.Sprintf("the fleet files read up to this one add up to more than %d bytes; it and the files after it are not read; move data out of the fleet repository", l.limits.totalBytes)})
		return false
	}
	return true
}

// underVisits reports whether the load may still decode file: whether the files
// decoded so far expanded to fewer YAML nodes than the load's limit. The first file
// refused carries the error.
func (l *loader) underVisits(file string) bool {
	if l.visits <= l.limits.visits {
		return true
	}
	if !l.overVisits {
		l.overVisits = true
		l.add(&Error{File: file, Message: fmt.Sprintf("the fleet files decoded up to this one expand to more than %d YAML nodes in all; it and the files after it are not read; make the fleet's files smaller", l.limits.visits)})
	}
	return false
}

func (l *loader) tooBig(file string, size int64) *Error {
	return &Error{File: file, Message: fmt.Sprintf("file is %d bytes, more than the limit of %d; split it or move data out of the fleet repository", size, l.limits.fileBytes)}
}

// describeMode names the type of a file that is not a regular file.
func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

func unwrapPathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// object reads file as one object of kind into out. It returns false when the file
// could not be parsed at all; the object is then unusable.
func (l *loader) object(file, kind string, out any) (Source, bool) {
	node, ok := l.document(file)
	if !ok {
		l.markBroken(kind, file)
		return Source{}, false
	}
	if got := topLevelString(node, "kind"); got != kind {
		l.add(&Error{File: file, Line: node.Line, Field: "kind", Message: fmt.Sprintf("is %q, but this file must hold a %s; %s", got, kind, whereKindsLive)})
		l.markBroken(kind, file)
		return Source{}, false
	}
	if !l.underVisits(file) {
		l.markBroken(kind, file)
		return Source{}, false
	}
	target := reflect.ValueOf(out).Elem()
	doc := l.doc(file)
	if doc != nil && doc.decoded != nil && reflect.TypeOf(doc.decoded) == target.Type() {
		target.Set(reflect.ValueOf(doc.decoded))
		l.visits += doc.visits
		return doc.src, true
	}
	errs := len(l.errs)
	src, visits, ok := decodeObject(file, node, out, &l.errs)
	l.visits += visits
	if !ok {
		l.markBroken(kind, file)
		return Source{}, false
	}
	if doc != nil && len(l.errs) == errs {
		doc.decoded, doc.src, doc.visits = target.Interface(), src, visits
	}
	return src, true
}

const whereKindsLive = "fleet.yaml holds the Fleet, regions/<name>.yaml a Region, apps/<name>/app.yaml an App, tenants/<name>.yaml a Tenant, addons/<name>/addon.yaml an Addon"

func (l *loader) markBroken(kind, file string) {
	if l.broken[kind] == nil {
		l.broken[kind] = map[string]bool{}
	}
	base := path.Base(file)
	if kind == KindApp || kind == KindAddon {
		base = path.Base(path.Dir(file))
	}
	l.broken[kind][strings.TrimSuffix(strings.TrimSuffix(base, ".yaml"), ".yml")] = true
}

func topLevelString(n *yaml.Node, key string) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

func (l *loader) loadFleet() {
	if _, err := fs.Stat(l.fsys, FleetFile); errors.Is(err, fs.ErrNotExist) {
		l.add(&Error{File: FleetFile, Message: "missing; every fleet repository has a fleet.yaml of kind Fleet at its root (see docs/fleet-format.md)"})
		return
	}
	var f Fleet
	if src, ok := l.object(FleetFile, KindFleet, &f); ok {
		f.Source = src
		if _, err := fs.Stat(l.fsys, FleetSecretsFile); err == nil {
			f.SecretsFile = FleetSecretsFile
		}
		l.model.Fleet = &f
	}
}

// yamlFiles lists the .yaml and .yml files directly inside dir, sorted.
func (l *loader) yamlFiles(dir string) []string {
	entries, err := fs.ReadDir(l.fsys, dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			l.add(&Error{File: dir, Message: "cannot read directory: " + unwrapPathError(err)})
		}
		return nil
	}
	var files []string
	for _, e := range entries {
		// Symlinks and other files that are not regular are listed too: read follows
		// a symlink that stays inside the repository, and refuses the rest with an
		// error, rather than leaving out a tenant without a word.
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			files = append(files, path.Join(dir, e.Name()))
		}
	}
	return files
}

// eachFile calls load with every YAML file of dir (regions/, tenants/) but its
// SOPS files: those named <name>.secrets.sops.yaml are returned by base name,
// and any other SOPS file is an error naming the form noun's must have.
func (l *loader) eachFile(dir, noun string, load func(file string)) (secrets map[string]string) {
	secrets = map[string]string{}
	for _, file := range l.yamlFiles(dir) {
		if strings.HasSuffix(file, SecretsSuffix) {
			secrets[strings.TrimSuffix(path.Base(file), SecretsSuffix)] = file
			continue
		}
		if strings.HasSuffix(file, ".sops.yaml") || strings.HasSuffix(file, ".sops.yml") {
			l.add(&Error{File: file, Message: "SOPS files in " + dir + "/ must be named <" + noun + ">" + SecretsSuffix})
			continue
		}
		load(file)
	}
	return secrets
}

func (l *loader) loadRegions() {
	secrets := l.eachFile(RegionsDir, "region", func(file string) {
		var r Region
		if src, ok := l.object(file, KindRegion, &r); ok {
			r.Source = src
			l.model.Regions = append(l.model.Regions, &r)
		}
	})
	for _, r := range l.model.Regions {
		if file, ok := secrets[r.Metadata.Name]; ok {
			r.SecretsFile = file
			delete(secrets, r.Metadata.Name)
		}
	}
	for base, file := range secrets {
		if !l.broken[KindRegion][base] {
			l.add(&Error{File: file, Message: fmt.Sprintf("no region is named %q; name the file after a region's metadata.name or remove it", base)})
		}
	}
}

func (l *loader) loadApps() {
	l.eachDir(AppsDir, AppFile, KindApp, func(file string) {
		var a App
		if src, ok := l.object(file, KindApp, &a); ok {
			a.Source = src
			l.model.Apps = append(l.model.Apps, &a)
			l.valuesFiles(src, "spec.valuesFiles", a.Spec.ValuesFiles)
		}
	})
}

func (l *loader) loadAddons() {
	l.eachDir(AddonsDir, AddonFile, KindAddon, func(file string) {
		var a Addon
		if src, ok := l.object(file, KindAddon, &a); ok {
			a.Source = src
			l.model.Addons = append(l.model.Addons, &a)
			l.valuesFiles(src, "spec.valuesFiles", a.Spec.ValuesFiles)
		}
	})
}

// eachDir calls load with the path of file in every directory directly inside
// parent (apps/<name>/app.yaml, addons/<name>/addon.yaml). A directory without
// the file is an error; a missing parent is not.
func (l *loader) eachDir(parent, name, kind string, load func(file string)) {
	entries, err := fs.ReadDir(l.fsys, parent)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.add(&Error{File: parent, Message: "cannot read directory: " + unwrapPathError(err)})
	}
	for _, e := range entries {
		dir := path.Join(parent, e.Name())
		if e.Type()&fs.ModeSymlink != 0 {
			info, err := fs.Stat(l.fsys, dir)
			if err != nil {
				l.add(&Error{File: dir, Message: "cannot read: " + unwrapPathError(err)})
				l.markBroken(kind, path.Join(dir, name))
				continue
			}
			if !info.IsDir() {
				continue
			}
		} else if !e.IsDir() {
			continue
		}
		file := path.Join(dir, name)
		if _, err := fs.Stat(l.fsys, file); errors.Is(err, fs.ErrNotExist) {
			l.add(&Error{File: dir, Message: fmt.Sprintf("directory has no %s; add one of kind %s or remove the directory", name, kind)})
			continue
		}
		load(file)
	}
}

func (l *loader) loadTenants() {
	secrets := l.eachFile(TenantsDir, "tenant", func(file string) {
		var t Tenant
		if src, ok := l.object(file, KindTenant, &t); ok {
			t.Source = src
			l.model.Tenants = append(l.model.Tenants, &t)
			for i, app := range t.Spec.Apps {
				l.valuesFiles(src, fmt.Sprintf("spec.apps[%d].valuesFiles", i), app.ValuesFiles)
			}
		}
	})
	for _, t := range l.model.Tenants {
		if file, ok := secrets[t.Metadata.Name]; ok {
			t.SecretsFile = file
			delete(secrets, t.Metadata.Name)
		}
	}
	for base, file := range secrets {
		// tenants/<tenant>.<region>.secrets.sops.yaml: fleet names have no dots.
		tenant, region, perRegion := strings.Cut(base, ".")
		i := slices.IndexFunc(l.model.Tenants, func(t *Tenant) bool { return t.Metadata.Name == tenant })
		if perRegion && i >= 0 {
			t := l.model.Tenants[i]
			if t.RegionSecretsFiles == nil {
				t.RegionSecretsFiles = map[string]string{}
			}
			t.RegionSecretsFiles[region] = file
			continue
		}
		if !l.broken[KindTenant][tenant] {
			l.add(&Error{File: file, Message: fmt.Sprintf("no tenant is named %q; name the file after a tenant's metadata.name (<tenant>%s, or <tenant>.<region>%s for one region) or remove it", tenant, SecretsSuffix, SecretsSuffix)})
		}
	}
}

// valuesFiles loads the values files an object names at field.
func (l *loader) valuesFiles(src Source, field string, files []string) {
	for i, rel := range files {
		at := fmt.Sprintf("%s[%d]", field, i)
		file, ok := l.resolve(src, at, rel)
		if !ok {
			continue
		}
		if _, done := l.model.valuesFiles[file]; done {
			continue
		}
		node, ok := l.document(file)
		if !ok {
			continue
		}
		if !l.underVisits(file) {
			continue
		}
		var v Values
		vsrc, visits, _ := decodeObject(file, node, &v, &l.errs)
		l.visits += visits
		l.model.valuesFiles[file] = v
		l.warnPlaintextSecrets(vsrc, "", v)
	}
}

// resolve turns a path written in src at field into a repository path, refusing
// absolute paths and paths that leave the repository.
func (l *loader) resolve(src Source, field, rel string) (string, bool) {
	if rel == "" || path.IsAbs(rel) || strings.Contains(rel, `\`) {
		l.add(src.errorAt(field, "%q is not a relative path; write a path relative to %s with forward slashes", rel, src.File))
		return "", false
	}
	p := path.Join(path.Dir(src.File), rel)
	if !fs.ValidPath(p) {
		l.add(src.errorAt(field, "%q leaves the repository; fleet files may only name files inside it", rel))
		return "", false
	}
	return p, true
}
