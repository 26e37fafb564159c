package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/fleetgen"
	"meridian.dev/meridian/render"
)

// Fleet is a synthetic fleet in a git work tree whose origin is the harness's git
// server.
type Fleet struct {
	// Spec is what fleetgen wrote.
	Spec fleetgen.Spec
	// Dir is the work tree.
	Dir string
	// Model is the fleet loaded from Dir at the last commit.
	Model *fleet.Model
	// Remote is the URL of the repository the work tree pushes to.
	Remote string
}

// writeFleet generates the fleet into dir, points its zone at zoneID and makes it a
// git work tree with one commit pushed to remote.
func writeFleet(ctx context.Context, dir string, spec fleetgen.Spec, zoneID, remote string) (*Fleet, error) {
	if err := fleetgen.Write(dir, spec); err != nil {
		return nil, err
	}
	f := &Fleet{Spec: spec, Dir: dir, Remote: remote}
	if err := f.replace("fleet.yaml", "Z0EXAMPLE0000000", zoneID); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"init", "--quiet", "--initial-branch=main"},
		{"config", "user.name", "Bench"},
		{"config", "user.email", "bench@example.com"},
		{"remote", "add", "origin", remote},
	} {
		if err := f.git(ctx, args...); err != nil {
			return nil, err
		}
	}
	if err := f.Commit(ctx, "synthetic fleet"); err != nil {
		return nil, err
	}
	return f, nil
}

// Commit commits everything in the work tree, pushes it and reloads the model.
func (f *Fleet) Commit(ctx context.Context, msg string) error {
	if err := f.git(ctx, "add", "--all"); err != nil {
		return err
	}
	if err := f.git(ctx, "commit", "--quiet", "--allow-empty", "-m", msg); err != nil {
		return err
	}
	if err := f.git(ctx, "push", "--quiet", "origin", "HEAD:main"); err != nil {
		return err
	}
	m, err := fleet.LoadDir(f.Dir)
	if err != nil {
		return err
	}
	f.Model = m
	return nil
}

// Head is the commit the work tree is at.
func (f *Fleet) Head(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "HEAD")
	cmd.Dir = f.Dir
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

func (f *Fleet) git(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = f.Dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// replace replaces the first old in a file of the fleet with new.
func (f *Fleet) replace(name, old, new string) error {
	p := filepath.Join(f.Dir, name)
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if !strings.Contains(string(data), old) {
		return fmt.Errorf("%s: no %q in it", name, old)
	}
	return os.WriteFile(p, []byte(strings.Replace(string(data), old, new, 1)), 0o644)
}

// SetReplicas changes the replicas value of tenant's app (the first of the tenant's
// apps whose values set replicas), the one-tenant change of the incremental
// benchmark. It returns the new value.
func (f *Fleet) SetReplicas(tenant, app string) (int, error) {
	name := filepath.Join("tenants", tenant+".yaml")
	data, err := os.ReadFile(filepath.Join(f.Dir, name))
	if err != nil {
		return 0, err
	}
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "- name: "+app {
			continue
		}
		for j := i + 1; j < len(lines) && j < i+4; j++ {
			if v, ok := strings.CutPrefix(strings.TrimSpace(lines[j]), "replicas: "); ok {
				var n int
				if _, err := fmt.Sscan(v, &n); err != nil {
					return 0, fmt.Errorf("%s: replicas %q: %w", name, v, err)
				}
				next := n%3 + 1
				lines[j] = strings.Replace(lines[j], "replicas: "+v, fmt.Sprintf("replicas: %d", next), 1)
				return next, os.WriteFile(filepath.Join(f.Dir, name), []byte(strings.Join(lines, "\n")), 0o644)
			}
		}
	}
	return 0, fmt.Errorf("%s: app %s sets no replicas", name, app)
}

// writeValues writes, for the scripted baseline, one Helm values file per Helm
// placement: the values Meridian merges (app defaults, fleet, region, tenant,
// tenant × region) with the placement's facts under "meridian", as a script's
// per-placement values file would hold them. Secrets stay in the tenants' SOPS files.
func writeValues(f *Fleet, dir, zone string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range f.Model.Placements() {
		if p.App.Spec.Helm == nil {
			continue
		}
		values := render.PlacementValues(p, zone)
		data, err := yaml.Marshal(values)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, valuesFile(p)), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func valuesFile(p fleet.Placement) string {
	return p.Tenant.Metadata.Name + "." + p.Region.Metadata.Name + "." + p.App.Metadata.Name + ".yaml"
}
