package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/internal/progress"
)

// Component names one program of a region. Its value is the binary's file name
// in the cache and the name of its log file in the region's directory.
type Component string

// The components a region runs. Etcd and KubeAPIServer always run; the others
// run only with Options.Workloads.
const (
	Etcd                  Component = "etcd"
	KubeAPIServer         Component = "kube-apiserver"
	KubeControllerManager Component = "kube-controller-manager"
	KubeScheduler         Component = "kube-scheduler"
	Kwok                  Component = "kwok"
)

// AllComponents lists every component in the order they are built and started.
var AllComponents = []Component{Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler, Kwok}

// componentsModulePath is the module path of the nested tools module; it is
// checked when the module is found by walking up directories.
const componentsModulePath = "meridian.dev/meridian/internal/testenv/testbed/components"

// buildRecipe is part of the cache key: change it when the way binaries are
// built or the cache layout changes, so old caches are not reused.
const buildRecipe = "go build -trimpath -ldflags version; kwok stages node/fast+pod/fast; v2"

// componentInfo says where a component comes from and roughly how long its
// first build takes on two cores (measured; later components reuse the build
// cache of earlier ones, hence the small numbers for the last ones).
type componentInfo struct {
	pkg      string // package built inside the components module
	module   string // module whose version names the component
	estimate string
}

var componentInfos = map[Component]componentInfo{
	Etcd:                  {"./cmd/etcd", "go.etcd.io/etcd/server/v3", "~1 min"},
	KubeAPIServer:         {"k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes", "~8 min"},
	KubeControllerManager: {"k8s.io/kubernetes/cmd/kube-controller-manager", "k8s.io/kubernetes", "~3 min"},
	KubeScheduler:         {"k8s.io/kubernetes/cmd/kube-scheduler", "k8s.io/kubernetes", "~1 min"},
	Kwok:                  {"sigs.k8s.io/kwok/cmd/kwok", "sigs.k8s.io/kwok", "~2 min"},
}

// kwokStageDirs are the kwok module's stage sets that make fake Nodes Ready and
// fake Pods Running and Ready right away, and keep the Nodes' heartbeats fresh
// (every 20-45 s). Without heartbeats the node lifecycle controller finds every
// Node not Ready once its grace period passes and marks every Pod not Ready, which
// kwok never undoes.
var kwokStageDirs = []string{"kustomize/stage/node/fast", "kustomize/stage/node/heartbeat", "kustomize/stage/pod/fast"}

// kwokStagesFile is the name of the stage file in the cache, which changes with
// the stage sets it holds.
func kwokStagesFile() string {
	sum := sha256.Sum256([]byte(strings.Join(kwokStageDirs, "\n")))
	return "kwok-stages-" + hex.EncodeToString(sum[:4]) + ".yaml"
}

// Environment variables that steer where the testbed finds and keeps things.
const (
	// EnvComponentsDir names the components module directory explicitly
	// (the directory holding internal/testenv/testbed/components/go.mod).
	EnvComponentsDir = "MERIDIAN_TESTBED_COMPONENTS"
	// EnvCacheDir replaces os.UserCacheDir()/meridian/testbed as the cache root.
	EnvCacheDir = "MERIDIAN_TESTBED_CACHE"
	// EnvSkip, when set to 1, makes New skip the test instead of starting
	// regions. Nothing else ever skips: a missing build fails the test.
	EnvSkip = "MERIDIAN_SKIP_TESTBED"
)

// Binaries is a complete, version-keyed set of built components in the cache.
type Binaries struct {
	// Dir holds one executable per Component, named after it.
	Dir string
	// KwokStages is the file of kwok Stage documents passed to kwok --config.
	KwokStages string
	// Key is the cache key: a digest of the components module's go.mod, go.sum
	// and sources, the Go version and the platform.
	Key string
}

// Path is the executable of component c.
func (b *Binaries) Path(c Component) string { return filepath.Join(b.Dir, string(c)) }

// componentsModule is the located tools module and how to run go in it.
type componentsModule struct {
	dir string
	env []string
}

// Build makes sure the given components (all of them when none are named) are
// built in the cache and returns where they are. A component already in the
// cache is not rebuilt; building one prints a line to progress first, because
// the first build takes minutes. Two processes building at once take turns
// through a lock file, and each binary appears in the cache by an atomic
// rename, so no one ever runs a half-written binary.
func Build(ctx context.Context, progress io.Writer, comps ...Component) (*Binaries, error) {
	if progress == nil {
		progress = io.Discard
	}
	if len(comps) == 0 {
		comps = AllComponents
	}
	for _, c := range comps {
		if _, ok := componentInfos[c]; !ok {
			return nil, fmt.Errorf("testbed: unknown component %q", c)
		}
	}
	mod, err := findComponentsModule()
	if err != nil {
		return nil, err
	}
	key, err := mod.cacheKey(ctx)
	if err != nil {
		return nil, err
	}
	root, err := cacheRoot()
	if err != nil {
		return nil, err
	}
	keyDir := filepath.Join(root, key)
	bins := &Binaries{Dir: filepath.Join(keyDir, "bin"), KwokStages: filepath.Join(keyDir, kwokStagesFile()), Key: key}
	needStages := slices.Contains(comps, Kwok)
	if missing := bins.missing(comps); len(missing) == 0 && (!needStages || bins.haveStages()) {
		return bins, nil
	}

	if err := os.MkdirAll(bins.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("testbed: cache: %w", err)
	}
	unlock, err := lockBuild(ctx, filepath.Join(keyDir, "build.lock"), progress)
	if err != nil {
		return nil, err
	}
	defer unlock()

	// Another process may have built some while we waited for the lock.
	missing := bins.missing(comps)
	if len(missing) == 0 && (!needStages || bins.haveStages()) {
		return bins, nil
	}
	if len(missing) > 0 {
		fmt.Fprintf(progress, "testbed: %d component(s) to build into %s (first time only)\n", len(missing), bins.Dir)
	}
	mods, err := mod.download(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range missing {
		if err := mod.build(ctx, c, mods, bins.Dir, progress); err != nil {
			return nil, err
		}
	}
	if needStages && !bins.haveStages() {
		if err := writeKwokStages(mods["sigs.k8s.io/kwok"].Dir, bins.KwokStages); err != nil {
			return nil, err
		}
	}
	return bins, nil
}

// missing lists the components not yet in the cache.
func (b *Binaries) missing(comps []Component) []Component {
	var out []Component
	for _, c := range comps {
		if fi, err := os.Stat(b.Path(c)); err != nil || !fi.Mode().IsRegular() {
			out = append(out, c)
		}
	}
	return out
}

// haveStages reports whether the kwok stage file is in the cache.
func (b *Binaries) haveStages() bool {
	_, err := os.Stat(b.KwokStages)
	return err == nil
}

// BuildEstimate is the rough first-build time of the components not yet in the
// cache (zero when all are there), so callers with a deadline, like New, can
// fail early with advice instead of timing out in the middle of a build.
func BuildEstimate(ctx context.Context, comps ...Component) (time.Duration, error) {
	if len(comps) == 0 {
		comps = AllComponents
	}
	mod, err := findComponentsModule()
	if err != nil {
		return 0, err
	}
	key, err := mod.cacheKey(ctx)
	if err != nil {
		return 0, err
	}
	root, err := cacheRoot()
	if err != nil {
		return 0, err
	}
	bins := &Binaries{Dir: filepath.Join(root, key, "bin")}
	minutes := map[Component]time.Duration{Etcd: 1, KubeAPIServer: 8, KubeControllerManager: 3, KubeScheduler: 1, Kwok: 3}
	var total time.Duration
	for _, c := range bins.missing(comps) {
		total += minutes[c] * time.Minute
	}
	return total, nil
}

func cacheRoot() (string, error) {
	if dir := os.Getenv(EnvCacheDir); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("testbed: no cache directory (set %s): %w", EnvCacheDir, err)
	}
	return filepath.Join(dir, "meridian", "testbed"), nil
}

// findComponentsModule locates internal/testenv/testbed/components: named by
// EnvComponentsDir, next to this source file when the binary was built without
// -trimpath, or by walking up from the working directory (so `meridian-dev up`
// works anywhere inside a checkout).
func findComponentsModule() (*componentsModule, error) {
	var candidates []string
	if dir := os.Getenv(EnvComponentsDir); dir != "" {
		if !isComponentsModule(dir) {
			return nil, fmt.Errorf("testbed: %s=%s: no %s module there", EnvComponentsDir, dir, componentsModulePath)
		}
		candidates = append(candidates, dir)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "components"))
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			candidates = append(candidates, filepath.Join(dir, "internal", "testenv", "testbed", "components"))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, dir := range candidates {
		if isComponentsModule(dir) {
			return newComponentsModule(dir), nil
		}
	}
	return nil, errors.New("testbed: cannot find the components module internal/testenv/testbed/components/go.mod: " +
		"run inside a Meridian checkout or set " + EnvComponentsDir + " to that directory")
}

func isComponentsModule(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == componentsModulePath
		}
	}
	return false
}

func newComponentsModule(dir string) *componentsModule {
	env := os.Environ()
	if os.Getenv("GOTOOLCHAIN") == "" {
		// The module names its toolchain; let an older go fetch it even when
		// its go env says GOTOOLCHAIN=local.
		env = append(env, "GOTOOLCHAIN=auto")
	}
	// The binaries run on this machine, whatever the caller cross-compiles for.
	env = append(env, "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH, "GOWORK=off")
	return &componentsModule{dir: dir, env: env}
}

// goCmd runs go in the components module and returns its standard output.
func (m *componentsModule) goCmd(ctx context.Context, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = m.dir
	cmd.Env = m.env
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := runLocked(cmd); err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, tail(stderr.Bytes(), 40))
	}
	return stdout.Bytes(), nil
}

// cacheKey digests everything the binaries depend on: the module's go.mod,
// go.sum and Go sources, the Go version that will build them and the platform.
func (m *componentsModule) cacheKey(ctx context.Context) (string, error) {
	out, err := m.goCmd(ctx, "env", "GOVERSION")
	if err != nil {
		return "", fmt.Errorf("testbed: components module: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s/%s\n", buildRecipe, strings.TrimSpace(string(out)), runtime.GOOS, runtime.GOARCH)
	var files []string
	err = filepath.WalkDir(m.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name := d.Name(); !d.IsDir() && (name == "go.mod" || name == "go.sum" || strings.HasSuffix(name, ".go")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("testbed: components module: %w", err)
	}
	slices.Sort(files)
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("testbed: components module: %w", err)
		}
		rel, _ := filepath.Rel(m.dir, path)
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// moduleInfo is the part of `go mod download -json` output the testbed uses.
type moduleInfo struct {
	Path    string
	Version string
	Dir     string
	Error   string
}

// download fetches (or finds in the module cache) the modules the components
// come from, for their versions and for kwok's stage files.
func (m *componentsModule) download(ctx context.Context) (map[string]moduleInfo, error) {
	paths := []string{"sigs.k8s.io/kwok"}
	for _, info := range componentInfos {
		if !slices.Contains(paths, info.module) {
			paths = append(paths, info.module)
		}
	}
	out, err := m.goCmd(ctx, append([]string{"mod", "download", "-json"}, paths...)...)
	if err != nil {
		return nil, fmt.Errorf("testbed: components module: %w", err)
	}
	mods := map[string]moduleInfo{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var mi moduleInfo
		if err := dec.Decode(&mi); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("testbed: components module: go mod download: %w", err)
		}
		if mi.Error != "" {
			return nil, fmt.Errorf("testbed: components module: %s: %s", mi.Path, mi.Error)
		}
		mods[mi.Path] = mi
	}
	for _, p := range paths {
		if mods[p].Dir == "" {
			return nil, fmt.Errorf("testbed: components module: go mod download did not report %s", p)
		}
	}
	return mods, nil
}

// build compiles one component into a temporary file next to the cache's bin
// directory and renames it into place.
func (m *componentsModule) build(ctx context.Context, c Component, mods map[string]moduleInfo, binDir string, w io.Writer) error {
	info := componentInfos[c]
	fmt.Fprintf(w, "testbed: building %s %s (first time only, %s)...\n", c, mods[info.module].Version, info.estimate)
	start := time.Now()
	tmp, err := os.MkdirTemp(filepath.Dir(binDir), "build-")
	if err != nil {
		return fmt.Errorf("testbed: %s: build: %w", c, err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, string(c))
	args := []string{"build", "-trimpath", "-o", out}
	if info.module == "k8s.io/kubernetes" {
		args = append(args, "-ldflags", kubeVersionFlags(mods[info.module].Version))
	}
	stop := progress.Every(w, progress.DefaultInterval, "testbed: building "+string(c), info.estimate+" on two cores")
	_, err = m.goCmd(ctx, append(args, info.pkg)...)
	stop()
	if err != nil {
		return fmt.Errorf("testbed: %s: build: %w", c, err)
	}
	if err := os.Rename(out, filepath.Join(binDir, string(c))); err != nil {
		return fmt.Errorf("testbed: %s: build: %w", c, err)
	}
	fmt.Fprintf(w, "testbed: built %s in %s\n", c, time.Since(start).Round(time.Second))
	return nil
}

// kubeVersionFlags stamps the Kubernetes version into the binaries the way
// Kubernetes' own build does; without it the apiserver reports
// v0.0.0-master, which clients that check the server version (Helm's
// kubeVersion, for one) refuse.
func kubeVersionFlags(version string) string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(version, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	var flags []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags,
			"-X", pkg+".gitVersion="+version,
			"-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor,
			"-X", pkg+".gitTreeState=clean",
		)
	}
	return strings.Join(flags, " ")
}

// writeKwokStages joins the Stage documents that the kustomizations of
// kwokStageDirs list into one multi-document file for kwok --config.
func writeKwokStages(kwokDir, dst string) error {
	var buf bytes.Buffer
	for _, dir := range kwokStageDirs {
		kdata, err := os.ReadFile(filepath.Join(kwokDir, dir, "kustomization.yaml"))
		if err != nil {
			return fmt.Errorf("testbed: kwok stages: %w", err)
		}
		var k struct {
			Resources []string `json:"resources"`
		}
		if err := yaml.Unmarshal(kdata, &k); err != nil {
			return fmt.Errorf("testbed: kwok stages: %s/kustomization.yaml: %w", dir, err)
		}
		if len(k.Resources) == 0 {
			return fmt.Errorf("testbed: kwok stages: %s/kustomization.yaml lists no resources", dir)
		}
		for _, r := range k.Resources {
			data, err := os.ReadFile(filepath.Join(kwokDir, dir, r))
			if err != nil {
				return fmt.Errorf("testbed: kwok stages: %w", err)
			}
			buf.WriteString("---\n")
			buf.Write(bytes.TrimSpace(data))
			buf.WriteString("\n")
		}
	}
	tmp := dst + ".tmp-" + hex.EncodeToString(randomBytes(4))
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("testbed: kwok stages: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("testbed: kwok stages: %w", err)
	}
	return nil
}
