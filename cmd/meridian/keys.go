package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/secrets"
)

// writeRenderErrors writes the errors of a render to w, one "Error:" line each,
// after prefix; clean makes a message fit to show (paths made relative,
// secrets redacted). Units that failed only because no SOPS key given opens a
// file are reported once per file, with how many they are: without the key
// every unit of a tenant fails with the same words. It reports whether there
// were such units; writeKeyHint then says how to give the key.
func writeRenderErrors(w io.Writer, prefix string, errs []*render.UnitError, clean func(string) string) (noKey bool) {
	var order []string
	units := map[string][]string{}
	for _, e := range errs {
		if !errors.Is(e, secrets.ErrNoKey) {
			fmt.Fprintf(w, "Error: %s%s\n", prefix, clean(e.Error()))
			continue
		}
		msg := clean(e.Err.Error())
		if _, ok := units[msg]; !ok {
			order = append(order, msg)
		}
		units[msg] = append(units[msg], e.Unit.String())
	}
	for _, msg := range order {
		list := units[msg]
		shown := list
		if len(shown) > 3 {
			shown = shown[:3]
		}
		more := ""
		if len(list) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(list)-len(shown))
		}
		fmt.Fprintf(w, "Error: %s%s (%d %s: %s%s)\n", prefix, msg, len(list), plural(len(list), "unit", "units"), strings.Join(shown, ", "), more)
	}
	return len(order) > 0
}

// writeKeyHint says how to give render and diff a SOPS key.
func writeKeyHint(w io.Writer) {
	fmt.Fprintln(w, "Give the SOPS key that opens them with --key-file FILE or SOPS_AGE_KEY_FILE=FILE (the demo fleet's is fleet-example/demo-age-key.txt).")
}
