package diff

import "testing"

// The guard's line says whether deletions would be held and what lets them
// through, naming the trailer.
func TestGuardLine(t *testing.T) {
	const reason = `the revision deletes 4 of 10 objects (40%), more than the limit of 30%; to let this revision through, end its commit message with the trailer "Meridian-Allow-Mass-Deletion: true"`
	tests := []struct {
		name  string
		guard RegionGuard
		want  string
	}{{
		name:  "held",
		guard: RegionGuard{Region: "eu-west-2", Deletions: 4, Managed: 10, MaxDeletePercent: 30, Held: true, Reason: reason},
		want:  "eu-west-2: deletions held: " + reason,
	}, {
		name:  "let through by the trailer",
		guard: RegionGuard{Region: "eu-west-2", Deletions: 4, Managed: 10, MaxDeletePercent: 30, AllowedByTrailer: true, Reason: reason},
		want:  "eu-west-2: deletes 4 of 10 objects (40%); the guard would hold them, but the head commit's Meridian-Allow-Mass-Deletion trailer lets them through",
	}, {
		name:  "within the limit",
		guard: RegionGuard{Region: "us-east-1", Deletions: 1, Managed: 10, MaxDeletePercent: 30},
		want:  "us-east-1: deletes 1 of 10 objects (10%), within the limit of 30%",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := guardLine(tt.guard); got != tt.want {
				t.Errorf("guardLine:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
