package conformance

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/internal/gotool"
)

// kustomizeCLI is the release of the kustomize CLI whose sigs.k8s.io/kustomize/api
// is the one Meridian's go.mod requires; checkTools fails when they part.
const kustomizeCLI = "v5.8.2"

// buildTime is about as long as building one CLI takes the first time, when
// none of the modules it needs is compiled yet.
const buildTime = 8 * time.Minute

// env is what every case needs: the module directories, the CLIs and the fleet.
type env struct {
	repo      string            // Meridian's module directory
	modules   map[string]string // directory by module@version of every source
	helm      string            // helm binary
	kustomize string            // kustomize binary
}

// newEnv downloads the sources' modules and builds the CLIs (both cached outside
// the checkout), logging how long each took.
func newEnv(t *testing.T, ctx context.Context) *env {
	t.Helper()
	out, err := gotool.Go(ctx, ".", nil, "list", "-m", "-f", "{{.Dir}}")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{repo: strings.TrimSpace(out), modules: map[string]string{}}

	start := time.Now()
	var want []string
	for _, s := range allSources() {
		if s.Version == "" {
			s.Version = e.required(t, ctx, s.Module)
		}
		if m := s.Module + "@" + s.Version; !slices.Contains(want, m) {
			want = append(want, m)
		}
	}
	e.download(t, ctx, want)
	t.Logf("%d modules downloaded or found in the module cache in %s", len(want), time.Since(start).Round(100*time.Millisecond))

	cacheDir, err := gotool.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	progress := &testWriter{t: t}
	for _, p := range []struct {
		bin  *string
		prog gotool.Program
	}{
		{&e.helm, gotool.Program{Name: "helm", Package: "helm.sh/helm/v3/cmd/helm", ModDir: e.repo}},
		{&e.kustomize, gotool.Program{Name: "kustomize", Package: "sigs.k8s.io/kustomize/kustomize/v5", ModDir: e.repo,
			Require: "sigs.k8s.io/kustomize/kustomize/v5@" + kustomizeCLI}},
	} {
		if _, built, err := gotool.Built(ctx, cacheDir, p.prog); err != nil {
			t.Fatal(err)
		} else if deadline, ok := t.Deadline(); ok && !built && time.Until(deadline) < buildTime {
			t.Fatalf("%s is not built yet (up to %s on two cores) and the test deadline is in %s: run go test with -timeout 30m",
				p.prog.Name, buildTime, time.Until(deadline).Round(time.Second))
		}
		if *p.bin, err = gotool.Build(ctx, cacheDir, p.prog, progress); err != nil {
			t.Fatal(err)
		}
	}
	e.checkTools(t, ctx)
	return e
}

// allSources lists the sources of every case.
func allSources() []source {
	var all []source
	for _, c := range charts {
		all = append(all, c.src)
	}
	for _, c := range trees {
		all = append(all, c.src)
	}
	return all
}

// required is the version of a module that Meridian's go.mod requires.
func (e *env) required(t *testing.T, ctx context.Context, module string) string {
	t.Helper()
	out, err := gotool.Go(ctx, e.repo, nil, "list", "-m", "-f", "{{.Version}}", module)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// dir is where a source is in the module cache.
func (e *env) dir(t *testing.T, ctx context.Context, s source) string {
	t.Helper()
	if s.Version == "" {
		s.Version = e.required(t, ctx, s.Module)
	}
	mod, ok := e.modules[s.Module+"@"+s.Version]
	if !ok {
		t.Fatalf("%s@%s was not downloaded", s.Module, s.Version)
	}
	return filepath.Join(mod, filepath.FromSlash(s.Dir))
}

// download fetches modules (module@version) into the module cache, outside any
// module so that Meridian's go.mod is not involved.
func (e *env) download(t *testing.T, ctx context.Context, modules []string) {
	t.Helper()
	out, err := gotool.Go(ctx, t.TempDir(), []string{"GOWORK=off", "GOFLAGS=-mod=mod"}, append([]string{"mod", "download", "-json"}, modules...)...)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var m struct{ Path, Version, Dir, Error string }
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go mod download: %v", err)
		}
		if m.Error != "" {
			t.Fatalf("go mod download %s@%s: %s", m.Path, m.Version, m.Error)
		}
		e.modules[m.Path+"@"+m.Version] = m.Dir
	}
}

// checkTools fails when a CLI was not built from the library version Meridian
// renders with: the comparison would then measure the libraries, not Meridian.
func (e *env) checkTools(t *testing.T, ctx context.Context) {
	t.Helper()
	for bin, module := range map[string]string{e.helm: "helm.sh/helm/v3", e.kustomize: "sigs.k8s.io/kustomize/api"} {
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		built := ""
		for _, d := range append(info.Deps, &info.Main) {
			if d.Path == module {
				built = d.Version
			}
		}
		if want := e.required(t, ctx, module); built != want {
			t.Fatalf("%s is built with %s %s, but Meridian's go.mod requires %s; for kustomize, set kustomizeCLI to the release of sigs.k8s.io/kustomize/kustomize/v5 that requires %s",
				filepath.Base(bin), module, built, want, want)
		}
	}
}

// writeFleet writes a fleet repository to dir: one region, one tenant, and an
// App per chart and tree with the chart or tree copied next to its app.yaml.
func (e *env) writeFleet(t *testing.T, ctx context.Context, dir string) {
	t.Helper()
	files := map[string]any{
		"fleet.yaml": object("Fleet", "conformance", map[string]any{
			"dns": map[string]any{"zone": "example.com", "hostedZoneID": "Z0EXAMPLE0000000"},
		}),
		"regions/eu-west-2.yaml": object("Region", "eu-west-2", map[string]any{
			"awsRegion": "eu-west-2",
			"cluster":   map[string]any{"kubeconfigContext": "eu-west-2"},
			"endpoint":  map[string]any{"type": "CNAME", "target": "ingress.eu-west-2.example.net"},
		}),
	}
	var apps []any
	for _, c := range charts {
		appDir := filepath.Join(dir, "apps", c.name)
		copyDir(t, e.dir(t, ctx, c.src), filepath.Join(appDir, "chart"))
		if c.prepare != nil {
			c.prepare(t, filepath.Join(appDir, "chart"))
		}
		spec := map[string]any{"helm": map[string]any{"chart": "chart"}, "values": values(t, c.name, c.values)}
		if len(c.allow) > 0 {
			spec["allowClusterScoped"] = c.allow
		}
		files["apps/"+c.name+"/app.yaml"] = object("App", c.name, spec)
		apps = append(apps, map[string]any{"name": c.name})
	}
	for _, c := range trees {
		appDir := filepath.Join(dir, "apps", c.name)
		copyDir(t, e.dir(t, ctx, c.src), filepath.Join(appDir, "tree"))
		path := "tree"
		if c.overlay != "" {
			path = "overlay"
			files["apps/"+c.name+"/overlay/kustomization.yaml"] = c.overlay
		}
		spec := map[string]any{"kustomize": map[string]any{"path": path}}
		if len(c.allow) > 0 {
			spec["allowClusterScoped"] = c.allow
		}
		files["apps/"+c.name+"/app.yaml"] = object("App", c.name, spec)
		apps = append(apps, map[string]any{"name": c.name})
	}
	files["tenants/"+tenant+".yaml"] = object("Tenant", tenant, map[string]any{"regions": []any{"eu-west-2"}, "apps": apps})

	for name, content := range files {
		data, ok := content.(string)
		if !ok {
			b, err := yaml.Marshal(content)
			if err != nil {
				t.Fatal(err)
			}
			data = string(b)
		}
		file := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// object is a fleet file of the given kind.
func object(kind, name string, spec map[string]any) map[string]any {
	return map[string]any{"apiVersion": "meridian.dev/v1alpha1", "kind": kind, "metadata": map[string]any{"name": name}, "spec": spec}
}

// values parses a case's values.
func values(t *testing.T, name, text string) map[string]any {
	t.Helper()
	v := map[string]any{}
	if err := yaml.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("%s: values: %v", name, err)
	}
	return v
}

// copyDir copies a directory of the module cache into dst; the copies are
// writable, unlike the module cache.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// testWriter writes lines to the test log.
type testWriter struct {
	t   *testing.T
	buf bytes.Buffer
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		w.t.Log(strings.TrimSuffix(line, "\n"))
	}
}

// runCLI runs a CLI and returns its standard output.
func runCLI(ctx context.Context, bin string, env []string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}
