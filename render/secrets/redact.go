package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// Redacted replaces every secret value in redacted output.
const Redacted = "**REDACTED**"

// MinSecretLen is the length, in bytes, below which a value is not treated as
// a secret to redact. Replacing "1", "80" or "on" everywhere would garble every
// manifest while hiding nothing worth hiding; a secret that short has no
// strength to protect. Callers that print Kubernetes Secrets should mask
// their data wholesale in any case.
const MinSecretLen = 4

// Leaves returns every scalar leaf of values (maps and lists walked to the
// bottom) as the string a template would print: strings as they are, numbers
// in plain decimal. Booleans, nulls, the strings "true", "false" and "null"
// and values shorter than MinSecretLen are left out, because they are not
// secrets and redacting them would garble the output. The result is sorted
// and without duplicates.
func Leaves(values map[string]any) []string {
	seen := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for _, c := range t {
				walk(c)
			}
		case []any:
			for _, c := range t {
				walk(c)
			}
		default:
			if s, ok := leafString(t); ok && isSecretish(s) {
				seen[s] = true
			}
		}
	}
	walk(values)
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// leafString renders a scalar as text; ok is false for values that are never
// secrets (booleans, null) or of a type a decrypted file does not hold.
func leafString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case []byte:
		return string(t), true
	case int:
		return strconv.Itoa(t), true
	case int64:
		return strconv.FormatInt(t, 10), true
	case uint64:
		return strconv.FormatUint(t, 10), true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	}
	return "", false
}

func isSecretish(s string) bool {
	if len(s) < MinSecretLen {
		return false
	}
	switch s {
	case "true", "false", "null":
		return false
	}
	return true
}

// Redactor replaces secret values in rendered output with Redacted, in one
// pass over the input (an Aho-Corasick automaton over all the forms of all
// the values). Where matches overlap or touch each other's text, the whole
// stretch they cover becomes one Redacted, so no part of a secret survives
// next to another. It is safe for concurrent use; a nil Redactor returns its
// input unchanged.
type Redactor struct {
	m *matcher
}

// NewRedactor returns a Redactor for secrets (typically Leaves of the
// decrypted values). Besides each value it replaces the forms the value takes
// in rendered manifests: its standard base64 encoding (Secret.data, Helm's
// b64enc), its JSON-escaped form (toJson, quoted YAML) when that differs, and,
// for multi-line values such as certificates and keys, each line on its own,
// since YAML block scalars indent them. Values shorter than MinSecretLen are
// skipped. The automaton's table takes about 4 bytes per needle byte per
// distinct needle byte: some 1.5 MB for 100 values of 25 bytes.
func NewRedactor(secrets []string) *Redactor {
	set := map[string]bool{}
	add := func(s string) {
		if len(s) >= MinSecretLen {
			set[s] = true
		}
	}
	for _, s := range secrets {
		if !isSecretish(s) {
			continue
		}
		add(s)
		add(base64.StdEncoding.EncodeToString([]byte(s)))
		for _, esc := range jsonForms(s) {
			add(esc)
		}
		if strings.ContainsAny(s, "\r\n") {
			for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
				add(strings.TrimSpace(line))
			}
		}
	}
	if len(set) == 0 {
		return &Redactor{}
	}
	needles := make([]string, 0, len(set))
	for s := range set {
		needles = append(needles, s)
	}
	sort.Strings(needles)
	return &Redactor{m: newMatcher(needles)}
}

// jsonForms returns s escaped as inside a JSON string, with and without
// HTML escaping (encoding/json escapes <, > and & by default; Helm's toJson
// does too).
func jsonForms(s string) []string {
	var out []string
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if err := enc.Encode(s); err != nil {
			continue
		}
		q := strings.TrimSuffix(b.String(), "\n")
		out = append(out, q[1:len(q)-1])
	}
	return out
}

// Redact returns b with every secret replaced by Redacted. b is not modified;
// when it holds no secret, b itself is returned.
func (r *Redactor) Redact(b []byte) []byte {
	if r == nil || r.m == nil {
		return b
	}
	spans := r.m.spans(b)
	if len(spans) == 0 {
		return b
	}
	covered := 0
	for _, sp := range spans {
		covered += sp.end - sp.start
	}
	out := make([]byte, 0, len(b)-covered+len(spans)*len(Redacted))
	prev := 0
	for _, sp := range spans {
		out = append(out, b[prev:sp.start]...)
		out = append(out, Redacted...)
		prev = sp.end
	}
	return append(out, b[prev:]...)
}

// RedactString is Redact for a string.
func (r *Redactor) RedactString(s string) string {
	if r == nil || r.m == nil {
		return s
	}
	return string(r.Redact([]byte(s)))
}

// Error returns err with every secret redacted from its message, computed once
// here. errors.Is and errors.As still see err and its causes, so callers classify
// it by type; what they print is the redacted message. Nil stays nil.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: r.RedactString(err.Error()), err: err}
}

// redactedError is an error whose message holds no secret.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
