package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
)

// newMovedCommand is a hidden command that meridian used to have and that
// moved to cmd/meridian-dev, so that this binary links no test environment.
// It fails, saying where the command went and giving the command line to run
// instead, with the same arguments. what says what the command ran, as the
// subject of "are not part of the production binary".
func newMovedCommand(name, what string) *cobra.Command {
	return &cobra.Command{
		Use:                name,
		Short:              "moved to meridian-dev",
		Hidden:             true,
		DisableFlagParsing: true, // every argument goes into the message as given
		RunE: func(_ *cobra.Command, args []string) error {
			invoked := append([]string{name}, args...)
			devArgs := invoked
			if name == "dev" { // its subcommands are meridian-dev's own
				devArgs = args
			}
			if len(devArgs) == 0 {
				devArgs = []string{"--help"}
			}
			run := "`go run ./cmd/meridian-dev " + shellJoin(devArgs) + "`"
			if target, ok := movedMakeTargets[strings.Join(invoked, " ")]; ok {
				run = "`make " + target + "` or " + run
			}
			return fmt.Errorf("meridian %s: %s not part of the production binary; run %s from a Meridian checkout", shellJoin(invoked), what, run)
		},
	}
}

// movedMakeTargets are the make targets that do what a moved command line did.
var movedMakeTargets = map[string]string{
	"demo":      "demo",
	"dev build": "testbed",
}

// shellJoin joins args into a command line that a shell splits back into args.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if plainArg.MatchString(a) {
			quoted[i] = a
		} else {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}

var plainArg = regexp.MustCompile(`^[A-Za-z0-9_./:=,@%+-]+$`)
