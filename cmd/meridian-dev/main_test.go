package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestCommands checks the commands and flags that README.md, docs/testbed.md
// and the demo's script name: they kept them when they moved here from
// meridian.
func TestCommands(t *testing.T) {
	want := map[string][]string{
		"build":   nil,
		"demo":    {"dir", "fleet", "listen"},
		"down":    {"dir"},
		"image":   {"created", "out", "platform", "push", "revision", "source", "version"},
		"resolve": {"server"},
		"scale":   {"context", "kubeconfig", "namespace", "replicas"},
		"up":      {"dir", "names", "nodes", "regions", "workloads"},
	}
	root := newRootCommand("meridian-dev")
	for name, flags := range want {
		cmd, _, err := root.Find([]string{name})
		if err != nil || cmd.Name() != name {
			t.Errorf("meridian-dev %s: not found (%v)", name, err)
			continue
		}
		for _, f := range flags {
			if cmd.Flags().Lookup(f) == nil {
				t.Errorf("meridian-dev %s: no flag --%s", name, f)
			}
		}
	}
}

// TestDownWithoutTestbed runs down on a directory where up never ran: it
// says so and succeeds.
func TestDownWithoutTestbed(t *testing.T) {
	dir := t.TempDir()
	root := newRootCommand("meridian-dev")
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"down", "--dir", dir})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out.String()), "no testbed in "+dir; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}
