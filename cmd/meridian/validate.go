package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"meridian.dev/meridian/render/fleet"
)

type validateOptions struct {
	fleetDir string
	output   string
}

func newValidateCommand() *cobra.Command {
	o := validateOptions{}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a fleet repository and report every problem with file and line",
		Long: `Validate loads a fleet repository strictly: unknown fields, duplicate keys and
names, dangling references, invalid names, unreadable values files and
unencrypted secrets files are all errors. Every error is reported in one run.

Exit status 0 means the fleet is valid; 1 means it is not.`,
		Example: `  meridian validate --fleet fleet-example
  meridian validate --fleet . --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runValidate(cmd.OutOrStdout(), o)
		},
	}
	cmd.Flags().StringVar(&o.fleetDir, "fleet", ".", "directory of the fleet repository")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

// validateReport is the --output json form of a validation.
type validateReport struct {
	Fleet      string         `json:"fleet"`
	Valid      bool           `json:"valid"`
	Tenants    int            `json:"tenants"`
	Regions    int            `json:"regions"`
	Apps       int            `json:"apps"`
	Placements int            `json:"placements"`
	Errors     []*fleet.Error `json:"errors"`
	Warnings   []*fleet.Error `json:"warnings"`
}

func runValidate(out io.Writer, o validateOptions) error {
	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("--output %q: use text or json", o.output)
	}
	report := validateReport{Fleet: o.fleetDir, Errors: []*fleet.Error{}, Warnings: []*fleet.Error{}}
	m, err := fleet.LoadDir(o.fleetDir)
	var list fleet.ErrorList
	switch {
	case errors.As(err, &list):
		report.Errors = list
	case err != nil:
		return err
	default:
		report.Valid = true
		report.Warnings = append(report.Warnings, m.Warnings...)
		report.Tenants, report.Regions, report.Apps = len(m.Tenants), len(m.Regions), len(m.Apps)
		report.Placements = len(m.Placements())
	}

	if o.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else {
		for _, e := range report.Errors {
			fmt.Fprintln(out, locate(o.fleetDir, e))
		}
		for _, w := range report.Warnings {
			fmt.Fprintln(out, "warning: "+locate(o.fleetDir, w))
		}
		if report.Valid {
			fmt.Fprintf(out, "%s is valid: %d tenants, %d regions, %d apps, %d placements\n",
				o.fleetDir, report.Tenants, report.Regions, report.Apps, report.Placements)
		} else {
			fmt.Fprintf(out, "%s is not valid: %d %s\n", o.fleetDir, len(report.Errors), plural(len(report.Errors), "error", "errors"))
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
