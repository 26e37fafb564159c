package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"meridian.dev/meridian/internal/gotool"
)

// Tools are the CLIs of the scripted baseline and the Meridian binary under test.
type Tools struct {
	// Sops, Helm and Kubectl are built by gotool from Go modules at the versions
	// Meridian's go.mod (sops, helm) and the testbed's components module (kubectl,
	// from k8s.io/kubernetes) pin, and cached by a digest of that go.mod and go.sum.
	Sops, Helm, Kubectl string
	// Meridian is `go build ./cmd/meridian` of this checkout, built for every run.
	Meridian string
}

// cliTool is one baseline CLI: the package to build and the module whose go.mod
// pins its version.
type cliTool struct {
	name, pkg string
	module    string // "main" or "components"
}

var cliTools = []cliTool{
	{"sops", "github.com/getsops/sops/v3/cmd/sops", "main"},
	{"helm", "helm.sh/helm/v3/cmd/helm", "main"},
	{"kubectl", "k8s.io/kubernetes/cmd/kubectl", "components"},
}

// toolModules returns the directories of the modules whose go.mod pins the
// baseline CLIs, by cliTool.module: the repository's own and the testbed's
// components module.
func toolModules(repo string) map[string]string {
	return map[string]string{
		"main":       repo,
		"components": filepath.Join(repo, "internal", "testenv", "testbed", "components"),
	}
}

// buildTools builds what is missing: the baseline CLIs into gotool's cache (once
// per version set, shared with other users of gotool) when baseline says the
// scripted baseline runs, the Meridian binary into workDir. repo is the
// Meridian checkout.
func buildTools(ctx context.Context, repo, workDir string, baseline bool, progress io.Writer) (*Tools, error) {
	cacheDir, err := gotool.CacheDir()
	if err != nil {
		return nil, err
	}
	mods := toolModules(repo)
	t := &Tools{}
	for _, tool := range cliTools {
		if !baseline {
			break
		}
		bin, err := gotool.Build(ctx, cacheDir, gotool.Program{Name: tool.name, Package: tool.pkg, ModDir: mods[tool.module]}, progress)
		if err != nil {
			return nil, err
		}
		switch tool.name {
		case "sops":
			t.Sops = bin
		case "helm":
			t.Helm = bin
		case "kubectl":
			t.Kubectl = bin
		}
	}
	t.Meridian = filepath.Join(workDir, "meridian")
	fmt.Fprintf(progress, "bench: building meridian from %s\n", repo)
	if _, err := gotool.Go(ctx, repo, nil, "build", "-trimpath", "-o", t.Meridian, "./cmd/meridian"); err != nil {
		return nil, err
	}
	return t, nil
}
