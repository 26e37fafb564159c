package diff

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUnified(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want string
	}{{
		name: "equal texts have no diff",
		a:    "a\nb\n", b: "a\nb\n",
		want: "",
	}, {
		name: "one changed line keeps three lines of context each side",
		a:    "1\n2\n3\n4\n5\n6\n7\n8\n9\n", b: "1\n2\n3\n4\nfive\n6\n7\n8\n9\n",
		want: "@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n",
	}, {
		name: "changes far apart make two hunks",
		a:    "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", b: "one\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ntwelve\n",
		want: "@@ -1,4 +1,4 @@\n-1\n+one\n 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+twelve\n",
	}, {
		name: "changes six lines apart share a hunk",
		a:    "1\n2\n3\n4\n5\n6\n7\n8\n", b: "one\n2\n3\n4\n5\n6\n7\neight\n",
		want: "@@ -1,8 +1,8 @@\n-1\n+one\n 2\n 3\n 4\n 5\n 6\n 7\n-8\n+eight\n",
	}, {
		name: "an added text is all insertions",
		a:    "", b: "x\ny\n",
		want: "@@ -0,0 +1,2 @@\n+x\n+y\n",
	}, {
		name: "an inserted line in the middle",
		a:    "a\nb\nc\n", b: "a\nb\nnew\nc\n",
		want: "@@ -1,3 +1,4 @@\n a\n b\n+new\n c\n",
	}, {
		name: "a single-line hunk omits its count",
		a:    "a\n", b: "b\n",
		want: "@@ -1 +1 @@\n-a\n+b\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Unified(tt.a, tt.b)); diff != "" {
				t.Errorf("Unified (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEditsAreShortest checks the edit script on random texts: it turns a into b,
// and it is as short as the longest common subsequence allows.
func TestEditsAreShortest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		a, b := randomLines(rng), randomLines(rng)
		script := edits(a, b)
		var gotA, gotB []string
		changes := 0
		for _, o := range script {
			if o.kind != '+' {
				gotA = append(gotA, o.text)
			}
			if o.kind != '-' {
				gotB = append(gotB, o.text)
			}
			if o.kind != ' ' {
				changes++
			}
		}
		if !cmp.Equal(a, gotA, cmp.Comparer(equalLines)) || !cmp.Equal(b, gotB, cmp.Comparer(equalLines)) {
			t.Fatalf("case %d: script does not turn %q into %q", i, a, b)
		}
		if want := len(a) + len(b) - 2*lcs(a, b); changes != want {
			t.Fatalf("case %d: %d changes, want %d for %q → %q", i, changes, want, a, b)
		}
	}
}

func equalLines(x, y []string) bool {
	return strings.Join(x, "\n") == strings.Join(y, "\n") && len(x) == len(y)
}

func randomLines(rng *rand.Rand) []string {
	n := rng.IntN(12)
	out := make([]string, n)
	for i := range out {
		out[i] = string(rune('a' + rng.IntN(4)))
	}
	return out
}

func lcs(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

// TestUnifiedFarApart: texts further apart than maxEditDistance are shown as one
// hunk that replaces the first with the second.
func TestUnifiedFarApart(t *testing.T) {
	var a, b strings.Builder
	for i := range maxEditDistance {
		fmt.Fprintf(&a, "a%d\n", i)
		fmt.Fprintf(&b, "b%d\n", i)
	}
	got := Unified(a.String(), b.String())
	want := fmt.Sprintf("@@ -1,%d +1,%d @@\n", maxEditDistance, maxEditDistance)
	if !strings.HasPrefix(got, want) || strings.Count(got, "\n-") != maxEditDistance || strings.Count(got, "\n+") != maxEditDistance {
		t.Errorf("got %d bytes starting %q", len(got), got[:min(len(got), 40)])
	}
}
