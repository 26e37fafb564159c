package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"meridian.dev/meridian/internal/gotool"
)

// fluxController is one Flux controller the peer runs: its Go module at a pinned
// release, whose main package is the module's root.
type fluxController struct {
	Name    string // the binary's name, e.g. source-controller
	Module  string // e.g. github.com/fluxcd/source-controller
	Version string
}

// fluxControllers are the newest releases the module proxy here serves that build
// and work together (BENCHMARKS.md, "Flux"): kustomize-controller v1.9.6 reads the
// artifacts of source-controller API v1.9.0; source-controller v1.9.1–v1.10.1 need
// github.com/fluxcd/pkg/artifact versions the proxy refuses; helm-controller v1.4.5
// and v1.5.x do not resolve.
var fluxControllers = []fluxController{
	{"source-controller", "github.com/fluxcd/source-controller", "v1.9.0"},
	{"kustomize-controller", "github.com/fluxcd/kustomize-controller", "v1.9.6"},
	{"helm-controller", "github.com/fluxcd/helm-controller", "v1.4.3"},
}

// fluxBuildModule returns the go.mod of the temporary module that builds c: it
// requires c's module at its release and carries the replace directives of c's
// own go.mod (ctlGoMod) that name another module, because Go ignores the replace
// directives of a dependency. Directory replacements (the controller's ./api)
// are left out: the requirement on the api module at its version stands.
func fluxBuildModule(c fluxController, ctlGoMod []byte) ([]byte, error) {
	var goVersion, toolchain string
	var replaces []string
	inReplace := false
	for i, line := range strings.Split(string(ctlGoMod), "\n") {
		if j := strings.Index(line, "//"); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case inReplace && f[0] == ")":
			inReplace = false
			continue
		case len(f) == 2 && f[0] == "replace" && f[1] == "(":
			inReplace = true
			continue
		case len(f) == 2 && f[0] == "go":
			goVersion = f[1]
			continue
		case len(f) == 2 && f[0] == "toolchain":
			toolchain = f[1]
			continue
		case f[0] == "replace":
			f = f[1:]
		case !inReplace:
			continue
		}
		// old [version] => new [version]
		arrow := slices.Index(f, "=>")
		if arrow < 1 || arrow > 2 || len(f)-arrow-1 < 1 || len(f)-arrow-1 > 2 {
			return nil, fmt.Errorf("%s@%s go.mod:%d: cannot read replace directive %q", c.Module, c.Version, i+1, strings.TrimSpace(line))
		}
		if len(f)-arrow-1 == 1 { // a directory
			continue
		}
		replaces = append(replaces, "\t"+strings.Join(f, " ")+"\n")
	}
	if goVersion == "" {
		return nil, fmt.Errorf("%s@%s go.mod: no go directive", c.Module, c.Version)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "module fluxbuild/%s\n\ngo %s\n", c.Name, goVersion)
	if toolchain != "" {
		fmt.Fprintf(&b, "\ntoolchain %s\n", toolchain)
	}
	fmt.Fprintf(&b, "\nrequire %s %s\n", c.Module, c.Version)
	if len(replaces) > 0 {
		b.WriteString("\nreplace (\n" + strings.Join(replaces, "") + ")\n")
	}
	return []byte(b.String()), nil
}

// FluxBinaries are the built controllers and where their CRDs are.
type FluxBinaries struct {
	// Bin maps a controller's name to its binary.
	Bin map[string]string
	// CRDs are the CustomResourceDefinition files of every controller, from the
	// config/crd/bases directory of its module at its release.
	CRDs []string
}

// moduleDir downloads module@version with the go command and returns where it is.
func moduleDir(ctx context.Context, dir, module, version string) (string, error) {
	out, err := gotool.Go(ctx, dir, []string{"GOWORK=off", "GOFLAGS=-mod=mod"}, "mod", "download", "-json", module+"@"+version)
	if err != nil {
		return "", err
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", module, version, err)
	}
	if info.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", module, version, info.Error)
	}
	return info.Dir, nil
}

// buildFlux builds each controller of fluxControllers with gotool (cached by a
// digest of its build module, as the baseline's CLIs are) and finds its CRDs.
// The build modules are written under gotool's cache directory, never into the
// repository: Flux does not enter Meridian's go.mod.
func buildFlux(ctx context.Context, progress io.Writer) (*FluxBinaries, error) {
	cacheDir, err := gotool.CacheDir()
	if err != nil {
		return nil, err
	}
	out := &FluxBinaries{Bin: map[string]string{}}
	for _, c := range fluxControllers {
		modDir := filepath.Join(cacheDir, "flux-modules", c.Name+"@"+c.Version)
		if err := os.MkdirAll(modDir, 0o755); err != nil {
			return nil, err
		}
		src, err := moduleDir(ctx, modDir, c.Module, c.Version)
		if err != nil {
			return nil, err
		}
		ctlGoMod, err := os.ReadFile(filepath.Join(src, "go.mod"))
		if err != nil {
			return nil, err
		}
		gomod, err := fluxBuildModule(c, ctlGoMod)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(modDir, "go.mod"), gomod, 0o644); err != nil {
			return nil, err
		}
		// go build -mod=mod in gotool's copy fills in the checksums.
		if err := os.WriteFile(filepath.Join(modDir, "go.sum"), nil, 0o644); err != nil {
			return nil, err
		}
		bin, err := gotool.Build(ctx, cacheDir, gotool.Program{Name: c.Name, Package: c.Module, ModDir: modDir}, progress)
		if err != nil {
			return nil, err
		}
		out.Bin[c.Name] = bin
		crds, err := filepath.Glob(filepath.Join(src, "config", "crd", "bases", "*.yaml"))
		if err != nil {
			return nil, err
		}
		if len(crds) == 0 {
			return nil, fmt.Errorf("%s@%s: no CRDs in config/crd/bases", c.Module, c.Version)
		}
		out.CRDs = append(out.CRDs, crds...)
	}
	return out, nil
}
