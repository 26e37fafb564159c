package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Tools are the CLIs of the scripted baseline and the Meridian binary under test.
type Tools struct {
	// Sops, Helm and Kubectl are built from Go modules at the versions Meridian's
	// go.mod (sops, helm) and the testbed's components module (kubectl, from
	// k8s.io/kubernetes) pin, and cached by a digest of those go.mod and go.sum files.
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

// buildTools builds what is missing: the baseline CLIs into cacheDir (once per
// version set), the Meridian binary into workDir. repo is the Meridian checkout.
func buildTools(ctx context.Context, repo, cacheDir, workDir string, progress io.Writer) (*Tools, error) {
	mods := toolModules(repo)
	key, err := toolsKey(ctx, mods)
	if err != nil {
		return nil, err
	}
	binDir := filepath.Join(cacheDir, "tools", key)
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	t := &Tools{}
	for _, tool := range cliTools {
		bin := filepath.Join(binDir, tool.name)
		switch tool.name {
		case "sops":
			t.Sops = bin
		case "helm":
			t.Helm = bin
		case "kubectl":
			t.Kubectl = bin
		}
		if _, err := os.Stat(bin); err == nil {
			continue
		}
		fmt.Fprintf(progress, "bench: building %s (first time only)\n", tool.pkg)
		start := time.Now()
		if err := buildInTempModule(ctx, mods[tool.module], binDir, tool); err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "bench: built %s in %s\n", tool.name, time.Since(start).Round(time.Second))
	}
	t.Meridian = filepath.Join(workDir, "meridian")
	fmt.Fprintf(progress, "bench: building meridian from %s\n", repo)
	if _, err := goCmd(ctx, repo, nil, "build", "-trimpath", "-o", t.Meridian, "./cmd/meridian"); err != nil {
		return nil, err
	}
	return t, nil
}

// buildInTempModule builds tool in a copy of the go.mod and go.sum of modDir (under
// another module path, in binDir), so the versions are exactly those pinned there
// and the checkout's go.mod is never touched.
func buildInTempModule(ctx context.Context, modDir, binDir string, tool cliTool) error {
	tmp, err := os.MkdirTemp(binDir, "build-"+tool.name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	gomod, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
	if err != nil {
		return err
	}
	lines := strings.Split(string(gomod), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "module ") {
			lines[i] = "module benchtools/" + tool.name
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return err
	}
	gosum, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.sum"), gosum, 0o644); err != nil {
		return err
	}
	out := filepath.Join(tmp, tool.name)
	// -mod=mod lets go add the checksums of the few modules only the CLI needs;
	// the versions of every module are those the copied go.mod selects.
	if _, err := goCmd(ctx, tmp, []string{"GOWORK=off"}, "build", "-mod=mod", "-trimpath", "-o", out, tool.pkg); err != nil {
		return fmt.Errorf("build %s: %w", tool.name, err)
	}
	return os.Rename(out, filepath.Join(binDir, tool.name))
}

// toolsKey digests the go.mod and go.sum files the CLIs' versions come from, the
// Go version and the platform.
func toolsKey(ctx context.Context, mods map[string]string) (string, error) {
	goVersion, err := goCmd(ctx, mods["main"], nil, "env", "GOVERSION")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s\n", strings.TrimSpace(goVersion), runtime.GOOS, runtime.GOARCH)
	for _, name := range []string{"main", "components"} {
		for _, f := range []string{"go.mod", "go.sum"} {
			data, err := os.ReadFile(filepath.Join(mods[name], f))
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "%s/%s %d\n", name, f, len(data))
			h.Write(data)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// goCmd runs go in dir and returns its standard output.
func goCmd(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if os.Getenv("GOTOOLCHAIN") == "" {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN=auto")
	}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}
