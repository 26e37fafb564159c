package reconciler_test

import (
	"testing"

	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/shard"
)

// The daemon asks an Ownership about reconciler.DNSWriter; shard.Manager answers
// for shard.DNSWriter. Neither package imports the other, so this ties them.
func TestDNSWriterIsTheShardManagers(t *testing.T) {
	if reconciler.DNSWriter != shard.DNSWriter {
		t.Errorf("reconciler.DNSWriter %q, shard.DNSWriter %q: the Route53 writer's Lease would never be found held", reconciler.DNSWriter, shard.DNSWriter)
	}
}

// The daemon shares the writer's DNS health through its health board when the
// board can: shard.Manager must be one.
var (
	_ reconciler.HealthBoard    = (*shard.Manager)(nil)
	_ reconciler.DNSHealthBoard = (*shard.Manager)(nil)
)
