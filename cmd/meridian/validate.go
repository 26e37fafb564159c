package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/openapi"
	"meridian.dev/meridian/render/secrets"
)

type validateOptions struct {
	fleetDir   string
	output     string
	strict     bool
	noRender   bool
	keyFiles   []string
	chartCache string
}

func newValidateCommand() *cobra.Command {
	o := validateOptions{}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a fleet repository and report every problem with file and line",
		Long: `Validate loads a fleet repository strictly: unknown fields, duplicate keys and
names, dangling references, invalid names, unreadable values files and
unencrypted SOPS files (every *.sops.yaml in the repository) are all errors.

Then it renders every placement, as the daemon would, and checks every object
against the OpenAPI schema of its region's Kubernetes version (bundled, no
network), custom resources against CRDs rendered in the fleet, and the tenant
policy: a tenant's objects in its namespace, cluster-scoped kinds only where the
app allows them. Without a SOPS key for a tenant's secrets file, its secret
values are replaced by placeholders for the render. Decrypted values are never
printed. --no-render skips this step.

Warnings (a credential-looking plain value, a Secret key filled from plain
values, a custom resource without a schema, a region version without bundled
schemas) do not fail validation unless --strict is given, as CI should.

Exit status 0 means the fleet is valid; 1 means it is not.`,
		Example: `  meridian validate --fleet fleet-example
  SOPS_AGE_KEY_FILE=age.txt meridian validate --fleet . --strict
  meridian validate --fleet . --no-render --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runValidate(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.fleetDir, "fleet", ".", "directory of the fleet repository")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.BoolVar(&o.strict, "strict", false, "treat warnings as errors (for CI)")
	f.BoolVar(&o.noRender, "no-render", false, "check the fleet files only; do not render placements and check the objects")
	f.StringArrayVar(&o.keyFiles, "key-file", nil, "SOPS key file: age identities, or armored OpenPGP keys (.asc); repeatable")
	f.StringVar(&o.chartCache, "chart-cache", "", "directory for charts downloaded from repositories (default: the user cache)")
	return cmd
}

// validateReport is the --output json form of a validation.
type validateReport struct {
	Fleet      string `json:"fleet"`
	Valid      bool   `json:"valid"`
	Tenants    int    `json:"tenants"`
	Regions    int    `json:"regions"`
	Apps       int    `json:"apps"`
	Placements int    `json:"placements"`
	// Addons counts the platform addons, AddonUnits their units (addon × region).
	Addons     int `json:"addons"`
	AddonUnits int `json:"addonUnits"`
	// Objects counts the rendered objects checked, and Kubernetes the versions whose
	// schemas they were checked against; both empty with --no-render.
	Objects    int               `json:"objects"`
	Kubernetes []string          `json:"kubernetes"`
	Errors     []validateProblem `json:"errors"`
	Warnings   []validateProblem `json:"warnings"`
	// Notes say how the validation ran, such as secrets replaced by placeholders.
	Notes []validateProblem `json:"notes"`
}

// validateProblem is a problem of a fleet file (File, Line) or of a rendered object
// (File, Placement, Object).
type validateProblem struct {
	File      string `json:"file"`
	Line      int    `json:"line,omitempty"`
	Placement string `json:"placement,omitempty"`
	Object    string `json:"object,omitempty"`
	Field     string `json:"field,omitempty"`
	Message   string `json:"message"`
	Others    int    `json:"others,omitempty"`
}

func fromFleet(list fleet.ErrorList) []validateProblem {
	out := make([]validateProblem, 0, len(list))
	for _, e := range list {
		out = append(out, validateProblem{File: e.File, Line: e.Line, Field: e.Field, Message: e.Message})
	}
	return out
}

func fromFindings(list []*openapi.Finding) []validateProblem {
	out := make([]validateProblem, 0, len(list))
	for _, f := range list {
		out = append(out, validateProblem{File: f.File, Placement: f.Placement, Object: f.Object, Field: f.Field, Message: f.Message, Others: f.Others})
	}
	return out
}

// locate formats p with its file path relative to the working directory, so editors
// and terminals can jump to it.
func (p validateProblem) locate(dir string) string {
	file := filepath.Join(dir, p.File)
	if p.Placement == "" && p.Object == "" {
		return (&fleet.Error{File: file, Line: p.Line, Field: p.Field, Message: p.Message}).Error()
	}
	return (&openapi.Finding{File: file, Placement: p.Placement, Object: p.Object, Field: p.Field, Message: p.Message, Others: p.Others}).Error()
}

func runValidate(ctx context.Context, out io.Writer, o validateOptions) error {
	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("--output %q: use text or json", o.output)
	}
	report := validateReport{Fleet: o.fleetDir, Errors: []validateProblem{}, Warnings: []validateProblem{}, Notes: []validateProblem{}, Kubernetes: []string{}}
	m, err := fleet.LoadDir(o.fleetDir)
	var list fleet.ErrorList
	switch {
	case errors.As(err, &list):
	case err != nil:
		return err
	default:
		report.Warnings = append(report.Warnings, fromFleet(m.Warnings)...)
		report.Tenants, report.Regions, report.Apps = len(m.Tenants), len(m.Regions), len(m.Apps)
		report.Placements = len(m.Placements())
		report.Addons, report.AddonUnits = len(m.Addons), len(m.AddonPlacements())
	}
	root, err := os.OpenRoot(o.fleetDir)
	if err != nil {
		return fmt.Errorf("open fleet repository: %w", err)
	}
	sopsErrs := fleet.CheckSOPSFiles(root.FS())
	root.Close()
	report.Errors = append(report.Errors, fromFleet(withoutRepeats(list, sopsErrs))...)

	if m != nil && len(report.Errors) == 0 && !o.noRender {
		if err := renderAndCheck(ctx, &report, m, o); err != nil {
			return err
		}
	}
	if o.strict {
		report.Errors = append(report.Errors, report.Warnings...)
		report.Warnings = []validateProblem{}
	}
	report.Valid = len(report.Errors) == 0
	return printValidateReport(out, report, o)
}

// renderAndCheck renders every placement of m and checks the objects, adding what
// it finds to report.
func renderAndCheck(ctx context.Context, report *validateReport, m *fleet.Model, o validateOptions) error {
	dir, err := filepath.Abs(o.fleetDir)
	if err != nil {
		return err
	}
	fromFiles, err := secrets.KeysFromFiles(o.keyFiles...)
	if err != nil {
		return err
	}
	fromEnv, err := secrets.KeysFromEnv()
	if err != nil {
		return err
	}
	replaced, err := openapi.UsePlaceholders(dir, m, secrets.NewDecryptor(secrets.MergeKeys(fromFiles, fromEnv)))
	if err != nil {
		return err
	}
	for _, file := range replaced {
		report.Notes = append(report.Notes, validateProblem{File: file, Message: "no SOPS key given decrypts it; its values were replaced by placeholders for rendering (give the key with --key-file or SOPS_AGE_KEY_FILE to render them)"})
	}
	renderer, err := newRenderer(o.keyFiles, o.chartCache)
	if err != nil {
		return err
	}
	result, err := renderer.Render(ctx, render.Snapshot{Dir: dir, Model: m}, render.Filter{})
	if err != nil {
		return err
	}
	checked, err := openapi.CheckRendered(m, result, append(result.SecretValues(), openapi.Placeholder))
	if err != nil {
		return err
	}
	report.Errors = append(report.Errors, fromFindings(checked.Errors)...)
	report.Warnings = append(report.Warnings, fromFindings(checked.Warnings)...)
	report.Objects, report.Kubernetes = checked.Objects, checked.Versions
	return nil
}

// withoutRepeats joins two error lists, leaving out errors of b that a already
// has, sorted by file and line.
func withoutRepeats(a, b fleet.ErrorList) fleet.ErrorList {
	seen := map[string]bool{}
	for _, e := range a {
		seen[e.Error()] = true
	}
	out := append(fleet.ErrorList{}, a...)
	for _, e := range b {
		if !seen[e.Error()] {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(x, y *fleet.Error) int {
		return cmp.Or(strings.Compare(x.File, y.File), cmp.Compare(x.Line, y.Line), strings.Compare(x.Field, y.Field), strings.Compare(x.Message, y.Message))
	})
	return out
}

func printValidateReport(out io.Writer, report validateReport, o validateOptions) error {
	if o.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else {
		for _, e := range report.Errors {
			fmt.Fprintln(out, e.locate(o.fleetDir))
		}
		for _, w := range report.Warnings {
			fmt.Fprintln(out, "warning: "+w.locate(o.fleetDir))
		}
		for _, n := range report.Notes {
			fmt.Fprintln(out, "note: "+n.locate(o.fleetDir))
		}
		switch {
		case !report.Valid:
			fmt.Fprintf(out, "%s is not valid: %d %s\n", o.fleetDir, len(report.Errors), plural(len(report.Errors), "error", "errors"))
		case report.Objects > 0:
			fmt.Fprintf(out, "%s is valid: %d tenants, %d regions, %d apps, %d placements, %s; %d rendered objects fit Kubernetes %s\n",
				o.fleetDir, report.Tenants, report.Regions, report.Apps, report.Placements, addonCount(report), report.Objects, strings.Join(report.Kubernetes, ", "))
		default:
			fmt.Fprintf(out, "%s is valid: %d tenants, %d regions, %d apps, %d placements, %s\n",
				o.fleetDir, report.Tenants, report.Regions, report.Apps, report.Placements, addonCount(report))
		}
	}
	if !report.Valid {
		return exitError{code: 1}
	}
	return nil
}

// locate formats e with its file path relative to the working directory, so editors
// and terminals can jump to it.
func locate(dir string, e *fleet.Error) string {
	located := *e
	located.File = filepath.Join(dir, e.File)
	return located.Error()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// addonCount says how many addons the fleet has and how many units they make.
func addonCount(r validateReport) string {
	return fmt.Sprintf("%d %s (%d addon %s)", r.Addons, plural(r.Addons, "addon", "addons"), r.AddonUnits, plural(r.AddonUnits, "unit", "units"))
}
