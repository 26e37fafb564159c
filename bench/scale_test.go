package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestScaleOf(t *testing.T) {
	size := func(placements int, cpu, rss float64, inc ...float64) *Size {
		s := &Size{Placements: placements, Meridian: &Side{CPUSeconds: cpu, PeakRSSMiB: rss}}
		for _, x := range inc {
			s.Incremental = append(s.Incremental, Incremental{AppliedSeconds: x})
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		sizes []*Size
		want  *Scale
	}{
		{
			name: "12, 300 and 3,000: CPU against 300, the change against 12",
			sizes: []*Size{
				size(12, 0.24, 120, 0.2, 0.4, 0.3),
				size(300, 3, 160, 0.25),
				size(3000, 33, 390, 0.5, 0.45, 0.9),
			},
			want: &Scale{
				PerSize: []SizeCost{{12, 20}, {300, 10}, {3000, 11}},
				Largest: 3000, Reference: 300, Smallest: 12,
				CPURatio:           1.1,
				IncrementalSeconds: 0.5, IncrementalRatio: 0.5 / 0.3,
				PeakRSSMiB: 390,
			},
		},
		{
			name:  "the size nearest 300 from above, sizes in any order",
			sizes: []*Size{size(3000, 36, 400), size(12, 1, 100), size(360, 3.6, 150)},
			want: &Scale{
				PerSize: []SizeCost{{3000, 12}, {12, 1000.0 / 12}, {360, 10}},
				Largest: 3000, Reference: 360, Smallest: 12,
				CPURatio: 1.2, PeakRSSMiB: 400,
			},
		},
		{
			name:  "one size: no ratios",
			sizes: []*Size{size(12, 0.12, 100, 0.2)},
			want: &Scale{
				PerSize: []SizeCost{{12, 10}},
				Largest: 12, Reference: 12, Smallest: 12,
				IncrementalSeconds: 0.2, PeakRSSMiB: 100,
			},
		},
		{
			name:  "a size without Meridian (baseline only) is left out",
			sizes: []*Size{{Placements: 12}, size(300, 3, 150)},
			want: &Scale{
				PerSize: []SizeCost{{300, 10}},
				Largest: 300, Reference: 300, Smallest: 300,
				PeakRSSMiB: 150,
			},
		},
		{name: "nothing ran", sizes: []*Size{{Placements: 12}}, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ScaleOf(tc.sizes)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
				t.Errorf("ScaleOf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScaleWrite(t *testing.T) {
	sc := &Scale{PerSize: []SizeCost{{12, 20}, {3000, 11}}, Largest: 3000, Reference: 300, Smallest: 12,
		CPURatio: 1.25, IncrementalSeconds: 0.4, IncrementalRatio: 2, PeakRSSMiB: 390}
	var b strings.Builder
	sc.Write(&b)
	for _, want := range []string{
		"cold CPU per placement at 3000 placements: 11.00 ms",
		"CPU per placement at 3000 ÷ at 300: 1.25× (target ≤ 1.1×: missed)",
		"one-tenant change at 3000: median 0.40 s from the webhook (target ≤ 0.5 s: met)",
		"one-tenant change at 3000 ÷ at 12: 2.00× (target ≤ 1.5×: missed)",
		"peak RSS at 3000: 390 MiB (target ≤ 400 MiB: met)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}
