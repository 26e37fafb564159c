package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestMovedCommands runs the commands that moved to meridian-dev: each fails
// with the command line to run instead, arguments included, and none is listed
// in the help.
func TestMovedCommands(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"demo"}, "meridian demo: the demo is not part of the production binary; run `make demo` or `go run ./cmd/meridian-dev demo` from a Meridian checkout"},
		{[]string{"demo", "--listen", "127.0.0.1:9090", "--fleet", "my fleet"}, "meridian demo --listen 127.0.0.1:9090 --fleet 'my fleet': the demo is not part of the production binary; run `go run ./cmd/meridian-dev demo --listen 127.0.0.1:9090 --fleet 'my fleet'` from a Meridian checkout"},
		{[]string{"dev", "up", "--regions", "3", "--workloads"}, "meridian dev up --regions 3 --workloads: the local regions are not part of the production binary; run `go run ./cmd/meridian-dev up --regions 3 --workloads` from a Meridian checkout"},
		{[]string{"dev", "build"}, "meridian dev build: the local regions are not part of the production binary; run `make testbed` or `go run ./cmd/meridian-dev build` from a Meridian checkout"},
		{[]string{"dev", "down", "--help"}, "meridian dev down --help: the local regions are not part of the production binary; run `go run ./cmd/meridian-dev down --help` from a Meridian checkout"},
		{[]string{"dev"}, "meridian dev: the local regions are not part of the production binary; run `go run ./cmd/meridian-dev --help` from a Meridian checkout"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			root := newRootCommand()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(tt.args)
			err := root.Execute()
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("output %q, want none: the error says it all", out.String())
			}
		})
	}

	root := newRootCommand()
	var help bytes.Buffer
	root.SetOut(&help)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"  dev ", "  demo "} {
		if strings.Contains(help.String(), name) {
			t.Errorf("meridian --help lists %q:\n%s", strings.TrimSpace(name), help.String())
		}
	}
}
