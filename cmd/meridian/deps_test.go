package main

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// forbidden reports whether the production binary must not link pkg: the
// testing package, net/http/httptest, the DNS server library of the Route53
// test server, and every test environment of internal/testenv. They belong in
// _test.go files and in cmd/meridian-dev.
func forbidden(pkg string) bool {
	switch {
	case pkg == "testing", pkg == "net/http/httptest":
		return true
	case pkg == "github.com/miekg/dns", strings.HasPrefix(pkg, "github.com/miekg/dns/"):
		return true
	case pkg == "meridian.dev/meridian/internal/testenv", strings.HasPrefix(pkg, "meridian.dev/meridian/internal/testenv/"):
		return true
	}
	return false
}

// allowedImporters are the packages that may import a forbidden package,
// because Meridian cannot do without them and cannot change them. Any other
// importer fails the test.
var allowedImporters = map[string][]string{
	// sops's age key source calls testing.Testing() to take a passphrase from
	// its own tests (age/tui.go), and the sops package itself imports that
	// key source. Meridian decrypts with sops, so it links the testing
	// package, whose init does nothing; nothing of Meridian's may.
	"testing": {"github.com/getsops/sops/v3/age"},
}

// TestProductionDependencies keeps the test doubles out of the production
// binary, as tailscale's tstest/deptest does: it lists what `go build` of this
// command links, for the platforms people run it on, and fails naming how a
// forbidden package is reached.
func TestProductionDependencies(t *testing.T) {
	t.Parallel()
	platforms := []struct{ goos, goarch, cgo string }{
		{"linux", "amd64", "0"},  // the container image (deploy/)
		{"linux", "arm64", "1"},  // a Linux machine or CI runner
		{"darwin", "arm64", "1"}, // a laptop running validate, render, diff
	}
	for _, p := range platforms {
		t.Run(p.goos+"_"+p.goarch, func(t *testing.T) {
			t.Parallel()
			imports := listDeps(t, "GOOS="+p.goos, "GOARCH="+p.goarch, "CGO_ENABLED="+p.cgo)
			for _, problem := range forbiddenImports(imports, "meridian.dev/meridian/cmd/meridian") {
				t.Error(problem)
			}
		})
	}
}

// listDeps runs `go list -deps` on this command with env added and returns
// every package it links with the packages it imports.
func listDeps(t *testing.T, env ...string) map[string][]string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", ".")
	cmd.Env = append(os.Environ(), append([]string{"GOTOOLCHAIN=local"}, env...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps (%s): %v\n%s", strings.Join(env, " "), err, stderr.String())
	}
	imports := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) > 0 {
			imports[fields[0]] = fields[1:]
		}
	}
	if len(imports) < 100 {
		t.Fatalf("go list -deps listed %d packages, want the whole graph:\n%s", len(imports), out)
	}
	return imports
}

// forbiddenImports returns, for every import of a forbidden package by a
// package not allowed to import it, the chain of imports from root to it.
func forbiddenImports(imports map[string][]string, root string) []string {
	var problems []string
	for _, pkg := range slices.Sorted(maps.Keys(imports)) {
		for _, imp := range imports[pkg] {
			if !forbidden(imp) || slices.Contains(allowedImporters[imp], pkg) {
				continue
			}
			chain := append(importChain(imports, root, pkg), imp)
			problems = append(problems, "the production binary links "+imp+": "+strings.Join(chain, " → "))
		}
	}
	return problems
}

// importChain returns a shortest chain of imports from root to pkg.
func importChain(imports map[string][]string, root, pkg string) []string {
	from := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 && from[pkg] == "" && pkg != root {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range imports[p] {
			if _, seen := from[imp]; !seen {
				from[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	chain := []string{pkg}
	for p := pkg; from[p] != ""; p = from[p] {
		chain = append([]string{from[p]}, chain...)
	}
	return chain
}
