package kustomize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
)

// policy walks a kustomization and everything it refers to before kustomize runs, and
// refuses what a build must never do: fetch over the network, run a program, inflate
// a Helm chart, or read outside the snapshot. Kustomize itself would fetch http(s)
// files and clone git URLs before any file system is consulted, so these checks
// cannot be left to snapshotFS; snapshotFS stays the second line for reads.
//
// Every path field kustomize loads is checked against the same snapshotFS the build
// uses, so what the policy accepts is exactly what the build may read.
type policy struct {
	ctx      context.Context
	fs       *snapshotFS
	builtins map[string]bool
	// seen holds the kustomization directories already walked, per plugin context,
	// so diamonds are walked once and cycles end (kustomize reports them).
	seen map[seenKey]bool
	// customSchema is set when a kustomization names an OpenAPI schema, which
	// kustomize keeps in process-wide state.
	customSchema bool
}

type seenKey struct {
	dir    string
	plugin string
}

// pluginUse is set while walking a kustomization listed under generators,
// transformers or validators: everything it produces is a plugin configuration.
type pluginUse struct {
	// role is generator, transformer or validator.
	role string
	// loaderDir is the directory of the kustomization that lists the plugin; paths in
	// plugin configurations are relative to it.
	loaderDir string
	// listedIn is that kustomization's file, relative to the root.
	listedIn string
}

// functionAnnotations mark a resource as a KRM function configuration.
var functionAnnotations = []string{"config.kubernetes.io/function", "config.k8s.io/function"}

// helmInflator is the built-in plugin that runs the helm binary.
const helmInflator = "HelmChartInflationGenerator"

// builtinPlugins are the kinds of kustomize's built-in generators and transformers.
var builtinPlugins = sync.OnceValue(func() map[string]bool {
	builtins := map[string]bool{}
	for _, name := range krusty.GetBuiltinPluginNames() {
		builtins[name] = true
	}
	return builtins
})

func newPolicy(ctx context.Context, fsys *snapshotFS) *policy {
	return &policy{ctx: ctx, fs: fsys, builtins: builtinPlugins(), seen: map[seenKey]bool{}}
}

// scpLike matches git's scp-like syntax, user@host:path, which kustomize clones.
var scpLike = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]*@`)

// isRemote reports whether kustomize would fetch p over the network or clone it
// with git rather than read it from the snapshot: any URL with a scheme (http,
// https, ssh, file, git), go-getter's git:: and gh: forms, GitHub shorthands, and
// scp-like user@host:path. It errs on the side of calling a path remote.
func isRemote(p string) bool {
	lower := strings.ToLower(strings.TrimSpace(p))
	if strings.Contains(lower, "://") {
		return true
	}
	for _, prefix := range []string{"git::", "gh:", "github.com/", "github.com:"} {
		if strings.HasPrefix(lower, prefix) {
			return true
		}
	}
	return scpLike.MatchString(lower)
}

// kustomizationFile finds the kustomization file in dir (a real directory inside
// the root); exactly one of the names kustomize recognises must exist.
func (p *policy) kustomizationFile(dir string) (string, error) {
	var found []string
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if p.fs.Exists(filepath.Join(dir, name)) {
			found = append(found, name)
		}
	}
	rel := p.fs.rel(dir)
	switch len(found) {
	case 1:
		return filepath.Join(dir, found[0]), nil
	case 0:
		return "", &Error{File: rel, Message: fmt.Sprintf("no kustomization file (%s); add a kustomization.yaml to it",
			strings.Join(konfig.RecognizedKustomizationFileNames(), ", "))}
	default:
		return "", &Error{File: rel, Message: fmt.Sprintf("more than one kustomization file (%s); keep only one", strings.Join(found, ", "))}
	}
}

// walk checks the kustomization in dir, a real directory inside the root, and
// everything it refers to. plugin is non-nil inside a generators, transformers or
// validators kustomization.
func (p *policy) walk(dir string, plugin *pluginUse) error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	key := seenKey{dir: dir}
	if plugin != nil {
		key.plugin = plugin.role + "\x00" + plugin.loaderDir
	}
	if p.seen[key] {
		return nil
	}
	p.seen[key] = true

	kpath, err := p.kustomizationFile(dir)
	if err != nil {
		return err
	}
	kfile := p.fs.rel(kpath)
	data, err := p.fs.ReadFile(kpath)
	if err != nil {
		return failf(kfile, err, "%v", err)
	}
	var k kustypes.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return failf(kfile, err, "%v; fix the file (kustomize's reference lists the fields)", err)
	}

	if len(k.OpenAPI) > 0 {
		p.customSchema = true
	}
	if err := p.refuseHelm(kfile, &k); err != nil {
		return err
	}
	if plugin != nil {
		only := kustypes.Kustomization{TypeMeta: k.TypeMeta, MetaData: k.MetaData, Resources: k.Resources, Bases: k.Bases}
		if !reflect.DeepEqual(k, only) {
			return refuse(kfile, "a kustomization listed under %ss in %s may only list resources, since anything else could rewrite plugin configurations; move the rest into %s",
				plugin.role, plugin.listedIn, plugin.listedIn)
		}
	}
	k.FixKustomization()

	for _, r := range k.Resources {
		if err := p.reference(kfile, dir, "resource", r, plugin); err != nil {
			return err
		}
	}
	for _, c := range k.Components {
		if err := p.reference(kfile, dir, "component", c, plugin); err != nil {
			return err
		}
	}
	if err := p.paths(kfile, dir, &k); err != nil {
		return err
	}
	for _, role := range []struct {
		name    string
		entries []string
	}{{"generator", k.Generators}, {"transformer", k.Transformers}, {"validator", k.Validators}} {
		for _, entry := range role.entries {
			if err := p.pluginEntry(kfile, dir, role.name, entry); err != nil {
				return err
			}
		}
	}
	return nil
}

// refuseHelm refuses every way a kustomization can ask for Helm chart inflation,
// which would run the helm binary and may download charts.
func (p *policy) refuseHelm(kfile string, k *kustypes.Kustomization) error {
	field := ""
	switch {
	case len(k.HelmCharts) > 0:
		field = "helmCharts"
	case len(k.HelmChartInflationGenerator) > 0:
		field = "helmChartInflationGenerator"
	case k.HelmGlobals != nil:
		field = "helmGlobals"
	default:
		return nil
	}
	return refuse(kfile, "%s is not allowed: Kustomize would inflate a Helm chart by running helm; make the chart its own app with spec.helm instead", field)
}

// paths checks every field of k that names a file kustomize loads.
func (p *policy) paths(kfile, dir string, k *kustypes.Kustomization) error {
	type named struct{ what, path string }
	var all []named
	add := func(what string, paths ...string) {
		for _, path := range paths {
			if path != "" {
				all = append(all, named{what, path})
			}
		}
	}
	add("crd", k.Crds...)
	add("configuration", k.Configurations...)
	add("openapi schema", k.OpenAPI["path"])
	for _, patch := range append(append([]kustypes.Patch{}, k.Patches...), k.PatchesJson6902...) {
		add("patch", patch.Path)
	}
	for _, psm := range k.PatchesStrategicMerge {
		// An entry is a file, or an inline patch; kustomize tries the file first.
		if s := string(psm); isRemote(s) || !isInlineYAML(s) {
			add("patch", s)
		}
	}
	for _, r := range k.Replacements {
		add("replacement source", r.Path)
	}
	for _, g := range k.ConfigMapGenerator {
		add("file", fileSources(g.FileSources)...)
		add("env file", g.EnvSources...)
	}
	for _, g := range k.SecretGenerator {
		add("file", fileSources(g.FileSources)...)
		add("env file", g.EnvSources...)
	}
	for _, n := range all {
		if _, _, err := p.checkPath(kfile, dir, n.what, n.path); err != nil {
			return err
		}
	}
	return nil
}

// fileSources strips the optional key= from generator file sources.
func fileSources(sources []string) []string {
	out := make([]string, 0, len(sources))
	for _, s := range sources {
		if _, path, ok := strings.Cut(s, "="); ok {
			s = path
		}
		out = append(out, s)
	}
	return out
}

// checkPath refuses a path that is remote, absolute, or leaves the root by name or
// through a symlink, and otherwise returns where it really is and whether it exists.
// A missing path is not an error here: kustomize reports it in its own words.
func (p *policy) checkPath(kfile, dir, what, path string) (string, bool, error) {
	if isRemote(path) {
		return "", false, refuse(kfile, "remote %s %s is not allowed; vendor it into the repository", what, path)
	}
	if filepath.IsAbs(path) {
		return "", false, refuse(kfile, "%s %s is an absolute path, which is not allowed; use a path relative to the kustomization's directory, inside the repository", what, path)
	}
	real, exists, err := p.fs.resolve(filepath.Join(dir, path))
	var escape *escapeError
	switch {
	case errors.As(err, &escape) && escape.link == "":
		return "", false, refuse(kfile, "%s %s leaves the snapshot root; keep every path inside the repository", what, path)
	case errors.As(err, &escape):
		return "", false, refuse(kfile, "%s %s leaves the snapshot root through the symlink %s (-> %s); replace the symlink with the files it points to",
			what, path, escape.link, escape.target)
	case err != nil:
		return "", false, failf(kfile, err, "%s %s: %v", what, path, err)
	}
	return real, exists, nil
}

// reference checks a resources or components entry and walks into it when it is a
// directory; inside a plugin kustomization, files are plugin configurations.
func (p *policy) reference(kfile, dir, what, entry string, plugin *pluginUse) error {
	real, exists, err := p.checkPath(kfile, dir, what, entry)
	if err != nil || !exists {
		return err
	}
	if p.fs.IsDir(real) {
		if _, err := p.kustomizationFile(real); err != nil {
			var e *Error
			if errors.As(err, &e) {
				return &Error{File: kfile, Message: fmt.Sprintf("%s %s: directory %s has %s", what, entry, e.File, e.Message)}
			}
			return err
		}
		return p.walk(real, plugin)
	}
	if plugin == nil {
		return nil
	}
	return p.pluginFile(plugin.listedIn, plugin.loaderDir, plugin.role, p.fs.rel(real), real)
}

// pluginEntry checks one generators, transformers or validators entry: inline
// configuration, a file of configurations, or a kustomization that produces them.
func (p *policy) pluginEntry(kfile, dir, role, entry string) error {
	if isInlineYAML(entry) {
		docs, err := decodeDocs([]byte(entry))
		if err != nil {
			return failf(kfile, err, "inline %s: %v", role, err)
		}
		return p.pluginConfigs(kfile, dir, "inline "+role, docs)
	}
	real, exists, err := p.checkPath(kfile, dir, role, entry)
	if err != nil || !exists {
		return err
	}
	if p.fs.IsDir(real) {
		return p.walk(real, &pluginUse{role: role, loaderDir: dir, listedIn: kfile})
	}
	return p.pluginFile(kfile, dir, role, entry, real)
}

// pluginFile checks a file of plugin configurations.
func (p *policy) pluginFile(kfile, loaderDir, role, shown, real string) error {
	data, err := p.fs.ReadFile(real)
	if err != nil {
		return failf(kfile, err, "%s %s: %v", role, shown, err)
	}
	docs, err := decodeDocs(data)
	if err != nil {
		return failf(kfile, err, "%s %s: %v", role, shown, err)
	}
	return p.pluginConfigs(kfile, loaderDir, role+" "+shown, docs)
}

// pluginConfigs allows only built-in plugins (apiVersion: builtin), never a KRM
// function or an exec, container or Go plugin, never Helm inflation, and checks the
// files the built-ins will load, relative to loaderDir.
func (p *policy) pluginConfigs(kfile, loaderDir, source string, docs []map[string]any) error {
	for _, doc := range docs {
		if items, ok := doc["items"].([]any); ok && strings.HasSuffix(str(doc["kind"]), "List") {
			var inner []map[string]any
			for _, item := range items {
				if m, ok := item.(map[string]any); ok {
					inner = append(inner, m)
				}
			}
			if err := p.pluginConfigs(kfile, loaderDir, source, inner); err != nil {
				return err
			}
			continue
		}
		apiVersion, kind := str(doc["apiVersion"]), str(doc["kind"])
		gvk := strings.TrimSpace(apiVersion + " " + kind)
		annotations, _ := nested(doc, "metadata", "annotations").(map[string]any)
		for _, a := range functionAnnotations {
			if _, ok := annotations[a]; ok {
				return refuse(kfile, "%s: %s is a KRM function (%s), which is not allowed; use only Kustomize's built-in generators and transformers (apiVersion: builtin)",
					source, gvk, a)
			}
		}
		if apiVersion != konfig.BuiltinPluginApiVersion || !p.builtins[kind] {
			return refuse(kfile, "%s: %s is an exec or container plugin, which is not allowed; use only Kustomize's built-in generators and transformers (apiVersion: builtin)",
				source, gvk)
		}
		if kind == helmInflator {
			return refuse(kfile, "%s: %s is not allowed: Kustomize would inflate a Helm chart by running helm; make the chart its own app with spec.helm instead",
				source, gvk)
		}
		for _, path := range configPaths(doc) {
			if _, _, err := p.checkPath(kfile, loaderDir, "file", path); err != nil {
				return err
			}
		}
	}
	return nil
}

// configPaths returns every value of the fields through which a built-in plugin
// loads files (path, paths, files, envs, env), at any depth. Field specs also use
// "path" for a field path such as metadata/labels, which passes the checks.
func configPaths(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for key, val := range v {
			switch key {
			case "path", "paths", "envs", "env":
				out = append(out, strs(val)...)
			case "files":
				out = append(out, fileSources(strs(val))...)
			default:
				out = append(out, configPaths(val)...)
			}
		}
	case []any:
		for _, item := range v {
			out = append(out, configPaths(item)...)
		}
	}
	return out
}

// strs returns a string, or the strings in a list.
func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, item := range v {
			if s, ok := item.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func nested(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// isInlineYAML reports whether s is YAML content (a mapping) rather than a path,
// as kustomize decides for generator, transformer and strategic-merge patch entries.
func isInlineYAML(s string) bool {
	docs, err := decodeDocs([]byte(s))
	return err == nil && len(docs) > 0
}

// decodeDocs decodes a stream of YAML (or JSON) documents, skipping empty ones.
func decodeDocs(data []byte) ([]map[string]any, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(doc) > 0 {
			docs = append(docs, doc)
		}
	}
}
