package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"testing"

	"meridian.dev/meridian/internal/testenv/fleetgen"
)

// BenchmarkLoaderReload loads a synthetic fleet of 250 tenants × 3 regions × 4
// apps again with a Loader that loaded it before: what a revision changing one
// tenant costs the daemon before anything is rendered. "read" reads every file
// again (a local directory); "ids" is given the files' content IDs, as a Git
// source's snapshot gives them, and reads none.
func BenchmarkLoaderReload(b *testing.B) {
	spec := fleetgen.Spec{Tenants: 250, Regions: 3, Apps: 4, Example: "../fleet-example", Secrets: true}
	dir := b.TempDir()
	if err := fleetgen.Write(dir, spec); err != nil {
		b.Fatal(err)
	}
	ids := map[string]string{}
	err := fs.WalkDir(os.DirFS(dir), ".", func(file string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(dir + "/" + file)
		sum := sha256.Sum256(data)
		ids[file] = hex.EncodeToString(sum[:])
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		ids  map[string]string
	}{{"read", nil}, {"ids", ids}} {
		b.Run(bc.name, func(b *testing.B) {
			var ld Loader
			if _, err := ld.Load(dir, bc.ids); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := ld.Load(dir, bc.ids); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPlacements lists the placements of the 250-tenant fleet, with their
// merged values.
func BenchmarkPlacements(b *testing.B) {
	spec := fleetgen.Spec{Tenants: 250, Regions: 3, Apps: 4, Example: "../fleet-example", Secrets: true}
	dir := b.TempDir()
	if err := fleetgen.Write(dir, spec); err != nil {
		b.Fatal(err)
	}
	m, err := LoadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		m.Placements()
	}
}
