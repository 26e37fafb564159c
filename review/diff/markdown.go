package diff

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"meridian.dev/meridian/sources"
)

// MarkdownLimit is the size Markdown keeps a comment under by default: GitHub
// refuses comments over 65,536 characters, and the rest is room for what a bot adds.
const MarkdownLimit = 60000

// Caps on the parts of a comment that come before the per-tenant sections, so
// that a change to every tenant still leaves room for some diffs.
const (
	maxTableRows = 100
	maxDNSLines  = 100
	maxNamed     = 20 // tenants named in the trimming note
	noteReserve  = 2000
)

// Markdown writes the report as a pull-request comment of at most limit characters
// (bytes; MarkdownLimit when limit is 0): a summary, a table per tenant, the
// mass-deletion guard and DNS, then a collapsible section per tenant with each
// object's diff. What does not fit is left out, from the end, and a note at the
// bottom says exactly what.
func Markdown(w io.Writer, r *Report, limit int) error {
	if limit <= 0 {
		limit = MarkdownLimit
	}
	budget := limit
	for {
		out := r.redactor.Redact([]byte(markdown(r, budget)))
		// Redaction can lengthen a secret shorter than its replacement; try again
		// with the difference taken off.
		if len(out) <= limit || budget < noteReserve*2 {
			_, err := w.Write(out)
			return err
		}
		budget -= len(out) - limit
	}
}

func markdown(r *Report, limit int) string {
	var head strings.Builder
	fmt.Fprintf(&head, "### Meridian diff `%s` → `%s`\n\n%s\n", sources.ShortRevision(r.Base), sources.ShortRevision(r.Head), headline(r))
	if len(r.Summary.HeldRegions) > 0 {
		fmt.Fprintf(&head, "\n> [!WARNING]\n> Deletions would be held in %s; see the mass-deletion guard below.\n", strings.Join(r.Summary.HeldRegions, ", "))
	}
	tenants := byTenant(r.Units)
	if r.Changed {
		head.WriteString("\n| Tenant | Regions | Apps | Objects added | changed | removed | DNS changes |\n|---|---|---|--:|--:|--:|--:|\n")
		if len(r.Summary.Addons) > 0 {
			row := tenantRow(r, addonsRow)
			fmt.Fprintf(&head, "| %s | %s | %s | %d | %d | %d | %d |\n", addonsRow, joinOr(row.regions, "—"), joinOr(row.apps, "—"), row.added, row.changed, row.removed, row.dns)
		}
		for i, name := range r.Summary.Tenants {
			if i == maxTableRows {
				fmt.Fprintf(&head, "| … and %d more tenants | | | | | | |\n", len(r.Summary.Tenants)-maxTableRows)
				break
			}
			row := tenantRow(r, name)
			fmt.Fprintf(&head, "| %s | %s | %s | %d | %d | %d | %d |\n", name, joinOr(row.regions, "—"), joinOr(row.apps, "—"), row.added, row.changed, row.removed, row.dns)
		}
		s := r.Summary
		fmt.Fprintf(&head, "| **%s** | **%s** | **%s** | **%d** | **%d** | **%d** | **%d** |\n",
			plural(len(s.Tenants), "tenant", "tenants"), plural(len(s.Regions), "region", "regions"), plural(len(s.Apps), "app", "apps"),
			s.ObjectsAdded, s.ObjectsChanged, s.ObjectsRemoved, len(r.DNS))
	}
	if len(r.Guard) > 0 {
		head.WriteString("\n**Mass-deletion guard**\n\n")
		for _, g := range r.Guard {
			line := mdEscape(guardLine(g))
			if g.Held {
				line = "**" + line + "**"
			}
			fmt.Fprintf(&head, "- %s\n", line)
		}
	}
	if len(r.DNS) > 0 {
		head.WriteString("\n**DNS**\n\n")
		for i, d := range r.DNS {
			if i == maxDNSLines {
				fmt.Fprintf(&head, "- … and %d more DNS changes\n", len(r.DNS)-maxDNSLines)
				break
			}
			fmt.Fprintf(&head, "- %s %s\n", d.Change, mdEscape(dnsLine(d)))
		}
	}
	if len(r.Notes) > 0 {
		head.WriteString("\n**Notes**\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&head, "- %s\n", mdEscape(n))
		}
	}

	// Sections are written in order while they fit. The first diff that does not
	// fit ends the diffs (later units are still listed); the first unit that does
	// not fit ends the sections.
	var body strings.Builder
	room := limit - head.Len() - noteReserve
	const closing = "\n</details>\n"
	var (
		diffsLeftOut int
		firstNoDiffs string // the unit whose diffs were cut first
		unitsLeftOut int
		tenantsCut   []string // tenants with units left out
	)
	for _, t := range tenants {
		a, c, d := t.counts()
		open := fmt.Sprintf("\n<details><summary><b>%s</b>: %s, objects %d added, %d changed, %d removed</summary>\n",
			t.name, plural(len(t.units), "unit", "units"), a, c, d)
		if unitsLeftOut > 0 || body.Len()+len(open)+len(closing) > room {
			unitsLeftOut += len(t.units)
			tenantsCut = append(tenantsCut, t.name)
			continue
		}
		body.WriteString(open)
		for _, u := range t.units {
			var unit strings.Builder
			fmt.Fprintf(&unit, "\n#### `%s`: %s\n\n", unitName(u), u.Change)
			if u.Adopt != "" {
				fmt.Fprintf(&unit, "- %s\n", adoptLine(u.Adopt))
			}
			for _, o := range u.Objects {
				fmt.Fprintf(&unit, "- `%s`: %s\n", o.Ref, o.Change)
				for _, k := range o.SecretKeys {
					fmt.Fprintf(&unit, "  - key `%s`: %s\n", k.Key, k.Change)
				}
				if o.Change == Changed && o.Diff == "" && len(o.SecretKeys) == 0 {
					fmt.Fprintf(&unit, "  - %s\n", objectNote)
				}
			}
			if unitsLeftOut > 0 || body.Len()+unit.Len()+len(closing) > room {
				if unitsLeftOut == 0 {
					tenantsCut = append(tenantsCut, t.name)
				}
				unitsLeftOut++
				continue
			}
			body.WriteString(unit.String())
			for _, o := range u.Objects {
				if o.Diff == "" {
					continue
				}
				block := fmt.Sprintf("\n<sub>%s</sub>\n\n%s", o.Ref, fence(o.Diff, "diff"))
				if diffsLeftOut > 0 || body.Len()+len(block)+len(closing) > room {
					if diffsLeftOut == 0 {
						firstNoDiffs = u.ID.String()
					}
					diffsLeftOut++
					continue
				}
				body.WriteString(block)
			}
		}
		body.WriteString(closing)
	}

	var note strings.Builder
	if diffsLeftOut > 0 || unitsLeftOut > 0 {
		fmt.Fprintf(&note, "\n---\n**Trimmed to fit a comment of %d characters.** ", limit)
		var cut []string
		if diffsLeftOut > 0 {
			cut = append(cut, fmt.Sprintf("the diffs of %s are left out, from unit `%s` on (their objects are still listed)",
				plural(diffsLeftOut, "object", "objects"), firstNoDiffs))
		}
		if unitsLeftOut > 0 {
			named, more := tenantsCut, ""
			if len(named) > maxNamed {
				named, more = named[:maxNamed], fmt.Sprintf(" and %d more", len(tenantsCut)-maxNamed)
			}
			of := "tenants"
			if len(tenantsCut) == 1 {
				of = "tenant"
			}
			cut = append(cut, fmt.Sprintf("%s of %s %s%s are not shown at all", plural(unitsLeftOut, "unit", "units"), of, strings.Join(named, ", "), more))
		}
		fmt.Fprintf(&note, "%s. The summary, the guard and DNS above are complete; `meridian diff --format text` shows everything.\n", capitalize(strings.Join(cut, "; ")))
	}
	return head.String() + body.String() + note.String()
}

// tenantUnits are the units of one tenant.
type tenantUnits struct {
	name  string
	units []Unit
}

// addonsRow is the name the platform addons' units are listed under: they belong
// to no tenant, and no tenant can be named so.
const addonsRow = "(addons)"

// ownerOf is the row a unit is listed in: its tenant, or addonsRow.
func ownerOf(u Unit) string {
	if u.Addon != "" {
		return addonsRow
	}
	return u.Tenant
}

func byTenant(units []Unit) []tenantUnits {
	var out []tenantUnits
	for _, u := range units {
		if len(out) == 0 || out[len(out)-1].name != ownerOf(u) {
			out = append(out, tenantUnits{name: ownerOf(u)})
		}
		out[len(out)-1].units = append(out[len(out)-1].units, u)
	}
	return out
}

// row is one tenant's line of the summary table.
type row struct {
	regions, apps           []string
	added, changed, removed int
	dns                     int
}

func tenantRow(r *Report, tenant string) row {
	var out row
	touch := func(region, app string) {
		out.regions = append(out.regions, region)
		if app != "" {
			out.apps = append(out.apps, app)
		}
	}
	for _, u := range r.Units {
		if ownerOf(u) == tenant {
			touch(u.Region, cmp.Or(u.App, u.Addon))
			a, c, d := counts(u)
			out.added, out.changed, out.removed = out.added+a, out.changed+c, out.removed+d
		}
	}
	for _, d := range r.DNS {
		if d.Tenant == tenant {
			touch(d.Region, d.App)
			out.dns++
		}
	}
	slices.Sort(out.regions)
	slices.Sort(out.apps)
	out.regions, out.apps = slices.Compact(out.regions), slices.Compact(out.apps)
	return out
}

func (t tenantUnits) counts() (added, changed, removed int) {
	for _, u := range t.units {
		a, c, d := counts(u)
		added, changed, removed = added+a, changed+c, removed+d
	}
	return added, changed, removed
}

// fence puts text in a fenced code block whose fence is longer than any run of
// backticks in the text, so that nothing in an object can end the block early.
func fence(text, lang string) string {
	longest, run := 0, 0
	for _, c := range text {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	f := strings.Repeat("`", max(3, longest+1))
	return f + lang + "\n" + strings.TrimSuffix(text, "\n") + "\n" + f + "\n"
}

// mdEscape keeps characters of names and messages from turning into Markdown or
// HTML.
func mdEscape(s string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`, "`", "\\`", "|", `\|`).Replace(s)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
