package gotool

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

	"meridian.dev/meridian/internal/progress"
)

// recipe is part of every cache key: change it when the way programs are built
// or the cache layout changes, so that old binaries are not reused.
const recipe = "gotool v1: go build -mod=mod -trimpath in a copy of go.mod and go.sum"

// EnvCacheDir replaces os.UserCacheDir()/meridian/tools as the cache.
const EnvCacheDir = "MERIDIAN_TOOLS_CACHE"

// Program is one command to build.
type Program struct {
	// Name is the binary's file name, e.g. helm.
	Name string
	// Package is the import path of its main package, e.g. helm.sh/helm/v3/cmd/helm.
	Package string
	// ModDir is the directory of the module whose go.mod and go.sum select the
	// version of every module the program is built from. They are copied, never
	// changed.
	ModDir string
	// Require, when set, is a module@version that the copy gets (go get) because
	// ModDir does not require the program's module, e.g.
	// sigs.k8s.io/kustomize/kustomize/v5@v5.8.2. The versions ModDir pins stay
	// unless that module needs newer ones; check what the binary was built from
	// with debug/buildinfo where that matters.
	Require string
}

// CacheDir is where Build keeps binaries unless told otherwise: $MERIDIAN_TOOLS_CACHE,
// or meridian/tools in the user's cache directory.
func CacheDir() (string, error) {
	if dir := os.Getenv(EnvCacheDir); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("gotool: no cache directory (set %s): %w", EnvCacheDir, err)
	}
	return filepath.Join(dir, "meridian", "tools"), nil
}

// Built reports where p's binary is in cacheDir and whether it is there, without
// building it: callers with a deadline can tell whether a build is still ahead.
func Built(ctx context.Context, cacheDir string, p Program) (string, bool, error) {
	key, err := Key(ctx, p)
	if err != nil {
		return "", false, err
	}
	bin := filepath.Join(cacheDir, key, p.Name)
	fi, err := os.Stat(bin)
	return bin, err == nil && fi.Mode().IsRegular(), nil
}

// Build returns the path of p's binary in cacheDir, building it first when it is
// not there; building prints a line to progress before and after, because a first
// build takes minutes. The binary appears by an atomic rename, so a concurrent
// caller never runs a half-written one (two may both build it).
func Build(ctx context.Context, cacheDir string, p Program, w io.Writer) (string, error) {
	if w == nil {
		w = io.Discard
	}
	bin, ok, err := Built(ctx, cacheDir, p)
	if err != nil || ok {
		return bin, err
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("gotool: %s: %w", p.Name, err)
	}
	fmt.Fprintf(w, "gotool: building %s (first time only)\n", p.Package)
	start := time.Now()
	stop := progress.Every(w, progress.DefaultInterval, "gotool: building "+p.Name, "")
	err = buildInTempModule(ctx, p, bin)
	stop()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(w, "gotool: built %s in %s\n", p.Name, time.Since(start).Round(time.Second))
	return bin, nil
}

// buildInTempModule builds p in a copy of the go.mod and go.sum of p.ModDir
// (under another module path, next to bin) and renames the binary to bin.
func buildInTempModule(ctx context.Context, p Program, bin string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(bin), "build-"+p.Name+"-")
	if err != nil {
		return fmt.Errorf("gotool: %s: %w", p.Name, err)
	}
	defer os.RemoveAll(tmp)
	gomod, err := os.ReadFile(filepath.Join(p.ModDir, "go.mod"))
	if err != nil {
		return fmt.Errorf("gotool: %s: %w", p.Name, err)
	}
	lines := strings.Split(string(gomod), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "module ") {
			lines[i] = "module gotool/" + p.Name
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return fmt.Errorf("gotool: %s: %w", p.Name, err)
	}
	gosum, err := os.ReadFile(filepath.Join(p.ModDir, "go.sum"))
	if err != nil {
		return fmt.Errorf("gotool: %s: %w", p.Name, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.sum"), gosum, 0o644); err != nil {
		return fmt.Errorf("gotool: %s: %w", p.Name, err)
	}
	env := []string{"GOWORK=off"}
	if p.Require != "" {
		if _, err := Go(ctx, tmp, env, "get", p.Require); err != nil {
			return fmt.Errorf("gotool: %s: %w", p.Name, err)
		}
	}
	out := filepath.Join(tmp, p.Name)
	// -mod=mod lets go add the checksums of the few modules only the program
	// needs; the versions of every module are those the copied go.mod selects.
	if _, err := Go(ctx, tmp, env, "build", "-mod=mod", "-trimpath", "-o", out, p.Package); err != nil {
		return fmt.Errorf("gotool: build %s: %w", p.Name, err)
	}
	if err := os.Rename(out, bin); err != nil {
		return fmt.Errorf("gotool: %s: %w", p.Name, err)
	}
	return nil
}

// Key digests everything p's binary depends on: the go.mod and go.sum it is
// built with, what it requires besides, its package, the Go version and the
// platform.
func Key(ctx context.Context, p Program) (string, error) {
	goVersion, err := Go(ctx, p.ModDir, nil, "env", "GOVERSION")
	if err != nil {
		return "", fmt.Errorf("gotool: %s: %w", p.Name, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s %s/%s\n%s %s %s\n", recipe, strings.TrimSpace(goVersion), runtime.GOOS, runtime.GOARCH, p.Name, p.Package, p.Require)
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(p.ModDir, f))
		if err != nil {
			return "", fmt.Errorf("gotool: %s: %w", p.Name, err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Go runs the go command in dir with env added to this process's environment
// and returns its standard output; the error holds its standard error. Without
// GOTOOLCHAIN in the environment it runs with GOTOOLCHAIN=auto, so that a go.mod
// naming a newer Go than the installed one still builds.
func Go(ctx context.Context, dir string, env []string, args ...string) (string, error) {
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
