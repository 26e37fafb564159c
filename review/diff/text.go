package diff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/sources"
)

// marker is the sign a change is listed with: + added, ~ changed, - removed.
func marker(c Change) string {
	switch c {
	case Added:
		return "+"
	case Removed:
		return "-"
	}
	return "~"
}

// headline says in one sentence what the report holds.
func headline(r *Report) string {
	s := r.Summary
	if !r.Changed {
		return "No changes: every unit renders the same objects and DNS is unchanged."
	}
	addons := ""
	if len(s.Addons) > 0 {
		addons = ", " + plural(len(s.Addons), "addon", "addons")
	}
	return fmt.Sprintf("Touches %s, %s and %s%s: %s change (objects %d added, %d changed, %d removed); DNS endpoints %d added, %d changed, %d removed.",
		plural(len(s.Tenants), "tenant", "tenants"), plural(len(s.Regions), "region", "regions"), plural(len(s.Apps), "app", "apps"), addons,
		plural(s.Units, "unit", "units"), s.ObjectsAdded, s.ObjectsChanged, s.ObjectsRemoved, s.DNSAdded, s.DNSChanged, s.DNSRemoved)
}

// unitName is a unit's ID, with a namespace unit marked as such.
func unitName(u Unit) string {
	if u.ID.IsNamespace() {
		return u.ID.String() + " (namespace)"
	}
	return u.ID.String()
}

// counts returns how many objects of a unit were added, changed and removed.
func counts(u Unit) (added, changed, removed int) {
	for _, o := range u.Objects {
		switch o.Change {
		case Added:
			added++
		case Changed:
			changed++
		case Removed:
			removed++
		}
	}
	return added, changed, removed
}

// guardLine describes one region's guard decision.
func guardLine(g RegionGuard) string {
	share := fmt.Sprintf("deletes %d of %d objects", g.Deletions, g.Managed)
	if g.Managed > 0 {
		share += fmt.Sprintf(" (%d%%)", g.Deletions*100/g.Managed)
	}
	switch {
	case g.Held:
		return fmt.Sprintf("%s: deletions held: %s", g.Region, g.Reason)
	case g.AllowedByTrailer:
		return fmt.Sprintf("%s: %s; the guard would hold them, but the head commit's %s trailer lets them through", g.Region, share, plan.AllowMassDeletionTrailer)
	}
	return fmt.Sprintf("%s: %s, within the limit of %d%%", g.Region, share, g.MaxDeletePercent)
}

// dnsLine describes one DNS change.
func dnsLine(d DNSChange) string {
	switch d.Change {
	case Added:
		return fmt.Sprintf("%s: latency record for %s (AWS %s) → %s → %s; health check %s", d.Name, d.Region, d.AWSRegion, d.Regional, d.Target, d.HealthCheck)
	case Removed:
		return fmt.Sprintf("%s: latency record for %s withdrawn, with %s and its health check", d.Name, d.Region, d.Regional)
	}
	var parts []string
	for _, f := range d.Fields {
		parts = append(parts, fmt.Sprintf("%s %s → %s", f.Field, orNone(f.Base), orNone(f.Head)))
	}
	return fmt.Sprintf("%s in %s: %s", d.Name, d.Region, strings.Join(parts, ", "))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// adoptLine says what a change of adoptExisting does.
func adoptLine(c Change) string {
	if c == Added {
		return "adoptExisting: objects of the unit that exist in a region and that Meridian did not create are taken over, and released (never deleted) when the unit leaves"
	}
	return "adoptExisting removed: an object of the unit that exists and that Meridian did not create is refused"
}

// objectNote is what a changed object shows instead of a diff when only redacted
// values changed.
const objectNote = "only redacted values changed"

// Text writes the report for a terminal: a summary, a table of units, every
// object's diff, DNS, the mass-deletion guard and notes.
func Text(w io.Writer, r *Report) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "meridian diff %s..%s\n%s\n", sources.ShortRevision(r.Base), sources.ShortRevision(r.Head), headline(r))
	if len(r.Summary.HeldRegions) > 0 {
		fmt.Fprintf(&b, "Deletions held in %s.\n", strings.Join(r.Summary.HeldRegions, ", "))
	}
	if len(r.Units) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "UNIT\tCHANGE\tADDED\tCHANGED\tREMOVED")
		for _, u := range r.Units {
			a, c, d := counts(u)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", unitName(u), u.Change, a, c, d)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, u := range r.Units {
		fmt.Fprintf(&b, "\n%s %s: %s\n", marker(u.Change), unitName(u), u.Change)
		if u.Adopt != "" {
			fmt.Fprintf(&b, "  %s %s\n", marker(u.Adopt), adoptLine(u.Adopt))
		}
		for _, o := range u.Objects {
			fmt.Fprintf(&b, "  %s %s\n", marker(o.Change), o.Ref)
			for _, k := range o.SecretKeys {
				fmt.Fprintf(&b, "      key %s: %s\n", k.Key, k.Change)
			}
			if o.Change == Changed && o.Diff == "" && len(o.SecretKeys) == 0 {
				fmt.Fprintf(&b, "      (%s)\n", objectNote)
			}
			for _, line := range strings.SplitAfter(o.Diff, "\n") {
				if line != "" {
					b.WriteString("      " + line)
				}
			}
		}
	}
	if len(r.DNS) > 0 {
		b.WriteString("\nDNS\n")
		for _, d := range r.DNS {
			fmt.Fprintf(&b, "  %s %s\n", marker(d.Change), dnsLine(d))
		}
	}
	if len(r.Guard) > 0 {
		b.WriteString("\nMass-deletion guard\n")
		for _, g := range r.Guard {
			fmt.Fprintf(&b, "  %s\n", guardLine(g))
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  %s\n", n)
		}
	}
	_, err := w.Write(r.redactor.Redact(b.Bytes()))
	return err
}

// JSON writes the report as one indented JSON document, with the field names of
// Report's tags.
func JSON(w io.Writer, r *Report) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(r.redactor.Redact(data), '\n'))
	return err
}
