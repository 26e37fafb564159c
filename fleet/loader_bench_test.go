package fleet

import (
	"testing"

	"meridian.dev/meridian/internal/testenv/fleetgen"
)

// BenchmarkLoaderReload loads a synthetic fleet of 250 tenants × 3 regions × 4
// apps again with a Loader that loaded it before: what a revision changing one
// tenant costs the daemon before anything is rendered.
func BenchmarkLoaderReload(b *testing.B) {
	spec := fleetgen.Spec{Tenants: 250, Regions: 3, Apps: 4, Example: "../fleet-example", Secrets: true}
	dir := b.TempDir()
	if err := fleetgen.Write(dir, spec); err != nil {
		b.Fatal(err)
	}
	var ld Loader
	if _, err := ld.LoadDir(dir); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ld.LoadDir(dir); err != nil {
			b.Fatal(err)
		}
	}
}
