package unitstatus

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"meridian.dev/meridian/reconciler/status"
	"meridian.dev/meridian/sources"
)

// ReasonWidth bounds the reason the table shows; the wide table shows it whole.
const ReasonWidth = 60

// WriteTable prints units as a table, then the refused revision if any,
// then the summary line.
func WriteTable(w io.Writer, st *status.Status, units []status.Placement, wide bool) error {
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	header := "TENANT\tREGION\tAPP\tSTATE\tREVISION\tREASON"
	if wide {
		header = "TENANT\tREGION\tAPP\tSTATE\tREVISION\tWAVE\tDRIFT\tDNS\tLAST SYNC\tREASON"
	}
	if len(units) > 0 {
		fmt.Fprintln(tw, header)
	}
	for _, p := range units {
		tenant, app := p.Tenant, p.App
		switch p.Kind {
		case status.KindAddon:
			tenant, app = status.AddonsRow, p.Addon
		case status.KindNamespace:
			app = "(namespace)"
		}
		reason := oneLine(p.Reason)
		if !wide {
			reason = truncate(reason, ReasonWidth)
		}
		rev := dash(sources.ShortRevision(p.Revision))
		if wide {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", tenant, p.Region, app, p.State, rev,
				dash(p.Wave), driftCell(p.Drift), dnsCell(p.DNS), sinceCell(st.GeneratedAt, p.LastSyncAt), reason)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", tenant, p.Region, app, p.State, rev, reason)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// A row without a reason ends in the padding of its last column.
	for line := range strings.Lines(table.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	if st.Refused != nil {
		fmt.Fprintf(w, "refused: revision %s (%s): %d error(s) in its fleet files; it keeps running %s\n",
			sources.ShortRevision(st.Refused.Commit.Revision), oneLine(st.Refused.Commit.Subject), len(st.Refused.Errors), revisionInUse(st))
	}
	_, err := fmt.Fprintln(w, Summary(st, units))
	return err
}

// revisionInUse is the short revision the daemon runs, or "nothing".
func revisionInUse(st *status.Status) string {
	if st.Revision == nil {
		return "nothing yet"
	}
	return sources.ShortRevision(st.Revision.Revision)
}

// Summary counts the units per state, in the dashboard's order, and says
// how many are placements: "23 units (14 placements): 21 Ready, 2 Failed".
func Summary(st *status.Status, units []status.Placement) string {
	if st.LastPass == nil && st.Counts.Units == 0 {
		return "no units yet: the daemon has not finished a pass"
	}
	if len(units) == 0 {
		return fmt.Sprintf("no unit selected (of %d)", st.Counts.Units)
	}
	count := map[status.State]int{}
	placements := 0
	for _, p := range units {
		count[p.State]++
		if p.Kind == status.KindPlacement {
			placements++
		}
	}
	var parts []string
	for _, s := range st.States {
		if count[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[s], s))
			delete(count, s)
		}
	}
	// A state this CLI's daemon did not list (a newer daemon) is still counted.
	for _, s := range slices.Sorted(maps.Keys(count)) {
		parts = append(parts, fmt.Sprintf("%d %s", count[s], s))
	}
	return fmt.Sprintf("%d %s (%d %s): %s", len(units), plural(len(units), "unit", "units"),
		placements, plural(placements, "placement", "placements"), strings.Join(parts, ", "))
}

// oneLine keeps a reason on its row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// truncate shortens s to at most n runes, ending in "…" when it cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// driftCell is the drifted objects and what was done about them, or "-".
func driftCell(d status.Drift) string {
	if d.Objects == 0 {
		return "-"
	}
	return fmt.Sprintf("%d %s", d.Objects, dash(d.Action))
}

// dnsCell is the unit's DNS endpoints healthy out of all, or "-" without any.
func dnsCell(eps []status.DNSEndpoint) string {
	if len(eps) == 0 {
		return "-"
	}
	healthy := 0
	for _, e := range eps {
		if e.Healthy {
			healthy++
		}
	}
	return fmt.Sprintf("%d/%d", healthy, len(eps))
}

// sinceCell is how long before the status document the unit last synced.
func sinceCell(now time.Time, at *time.Time) string {
	if at == nil {
		return "never"
	}
	d := now.Sub(*at).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
