package secrets

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLeaves(t *testing.T) {
	values := map[string]any{
		"portal": map[string]any{
			"database": map[string]any{
				"password": "s3cr3t-Passw0rd",
				"port":     5432,
				"ratio":    0.75,
				"big":      int64(9007199254740993),
				"tls":      true,
				"nothing":  nil,
				"bytes":    []byte("raw-bytes"),
			},
			"apiKeys": []any{"key-aaaa-1111", map[string]any{"nested": "tok_9f8e7d6c"}, []any{"deep-value"}},
			"short":   "abc",
			"one":     1,
			"word":    "true",
			"empty":   "",
		},
		"billing": map[string]any{"token": "tok_9f8e7d6c"}, // a duplicate
	}
	want := []string{"0.75", "5432", "9007199254740993", "deep-value", "key-aaaa-1111", "raw-bytes", "s3cr3t-Passw0rd", "tok_9f8e7d6c"}
	if diff := cmp.Diff(want, Leaves(values)); diff != "" {
		t.Errorf("Leaves (-want +got):\n%s", diff)
	}
	if got := Leaves(nil); len(got) != 0 {
		t.Errorf("Leaves(nil) = %q, want none", got)
	}
}

func TestRedactor(t *testing.T) {
	pem := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----"
	r := NewRedactor([]string{"s3cr3t-Passw0rd", "tok_9f8e7d6c", "tok_9f8e7d6c-long-version", "Passw0rd-long-version", `a"b<c>&d`, pem, "abc", ""})
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain value", in: "password: s3cr3t-Passw0rd\n", want: "password: **REDACTED**\n"},
		{name: "every occurrence", in: "a=s3cr3t-Passw0rd b=s3cr3t-Passw0rd", want: "a=**REDACTED** b=**REDACTED**"},
		{name: "base64 in Secret data", in: "data:\n  password: " + b64("s3cr3t-Passw0rd") + "\n", want: "data:\n  password: **REDACTED**\n"},
		{name: "longest value wins", in: "token: tok_9f8e7d6c-long-version", want: "token: **REDACTED**"},
		{name: "shorter value inside other text", in: "token: tok_9f8e7d6c-other", want: "token: **REDACTED**-other"},
		{name: "JSON-escaped with HTML escaping", in: `{"v":"a\"b\u003cc\u003e\u0026d"}`, want: `{"v":"**REDACTED**"}`},
		{name: "JSON-escaped without HTML escaping", in: `{"v":"a\"b<c>&d"}`, want: `{"v":"**REDACTED**"}`},
		{name: "raw value", in: `v: a"b<c>&d`, want: `v: **REDACTED**`},
		{
			name: "multi-line value in a block scalar",
			in:   "key: |\n    -----BEGIN PRIVATE KEY-----\n    MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n    BKcwggSjAgEAAoIBAQC7\n    -----END PRIVATE KEY-----\n",
			want: "key: |\n    **REDACTED**\n    **REDACTED**\n    **REDACTED**\n    **REDACTED**\n",
		},
		{name: "multi-line value JSON-escaped", in: `"key":"` + strings.ReplaceAll(pem, "\n", `\n`) + `"`, want: `"key":"**REDACTED**"`},
		{name: "multi-line value in base64", in: "key: " + b64(pem), want: "key: **REDACTED**"},
		{name: "adjacent secrets", in: "x tok_9f8e7d6c-long-versions3cr3t-Passw0rd y", want: "x **REDACTED**" + "**REDACTED** y"},
		{name: "secret overlapping another", in: "x s3cr3t-Passw0rd-long-version y", want: "x **REDACTED** y"},
		{name: "values shorter than MinSecretLen are kept", in: "abc abcd", want: "abc abcd"},
		{name: "nothing to redact", in: "kind: ConfigMap\n", want: "kind: ConfigMap\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, string(r.Redact([]byte(tt.in)))); diff != "" {
				t.Errorf("Redact (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, r.RedactString(tt.in)); diff != "" {
				t.Errorf("RedactString (-want +got):\n%s", diff)
			}
		})
	}

	for _, empty := range []*Redactor{nil, NewRedactor(nil), NewRedactor([]string{"", "1", "true"})} {
		if got := string(empty.Redact([]byte("port: 1\ntls: true\n"))); got != "port: 1\ntls: true\n" {
			t.Errorf("a redactor without secrets changed its input: %q", got)
		}
	}
}

// The automaton must find exactly the stretches a brute-force search finds:
// random needles and texts over a small alphabet make overlaps, nesting and
// shared prefixes and suffixes common.
func TestMatcherAgreesWithBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	word := func(min, max int) string {
		b := make([]byte, min+rng.IntN(max-min+1))
		for i := range b {
			b[i] = "abcd"[rng.IntN(4)]
		}
		return string(b)
	}
	for round := range 300 {
		needles := make([]string, 1+rng.IntN(8))
		for i := range needles {
			needles[i] = word(1, 6)
		}
		text := word(0, 80)
		covered := make([]bool, len(text)+1)
		for _, n := range needles {
			for i := 0; i+len(n) <= len(text); i++ {
				if text[i:i+len(n)] == n {
					for j := i; j < i+len(n); j++ {
						covered[j] = true
					}
				}
			}
		}
		got := make([]bool, len(text)+1)
		for _, sp := range newMatcher(needles).spans([]byte(text)) {
			for j := sp.start; j < sp.end; j++ {
				if got[j] {
					t.Fatalf("round %d: spans overlap at %d", round, j)
				}
				got[j] = true
			}
		}
		if diff := cmp.Diff(covered, got); diff != "" {
			t.Fatalf("round %d: needles %q in %q: covered bytes (-brute force +automaton):\n%s", round, needles, text, diff)
		}
	}
}

// manifest returns about size bytes of YAML manifests in which each of the
// secrets appears, plainly or in base64, every few kilobytes.
func manifest(size int, secrets []string) string {
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: portal-%d\n  namespace: trucking\n  labels:\n    app.kubernetes.io/name: portal\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n        - name: web\n          image: registry.example/portal:1.%d.0\n          env:\n", i, i)
		for j := 0; j < 4; j++ {
			s := secrets[rng.IntN(len(secrets))]
			if j%2 == 1 {
				s = base64.StdEncoding.EncodeToString([]byte(s))
			}
			fmt.Fprintf(&b, "            - name: VALUE_%d\n              value: %q\n", j, s)
		}
		b.WriteString("          resources:\n            limits:\n              cpu: 500m\n              memory: 256Mi\n")
	}
	return b.String()
}

func benchSecrets(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("secret-%03d-%x", i, uint64(i)*0x9e3779b97f4a7c15)
	}
	return out
}

func TestRedactorOnAManifest(t *testing.T) {
	secrets := benchSecrets(100)
	in := manifest(1<<20, secrets)
	out := NewRedactor(secrets).RedactString(in)
	for _, s := range secrets {
		if strings.Contains(out, s) || strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(s))) {
			t.Fatalf("secret %q survived redaction", s)
		}
	}
	if !strings.Contains(out, "image: registry.example/portal:1.7.0") {
		t.Error("redaction changed text that holds no secret")
	}
}

func BenchmarkRedact(b *testing.B) {
	secrets := benchSecrets(100)
	in := []byte(manifest(1<<20, secrets))
	r := NewRedactor(secrets)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		r.Redact(in)
	}
}

func BenchmarkNewRedactor(b *testing.B) {
	secrets := benchSecrets(100)
	b.ReportAllocs()
	for b.Loop() {
		NewRedactor(secrets)
	}
}

func TestRedactorError(t *testing.T) {
	cause := &fs.PathError{Op: "open", Path: "hunter2-is-the-password", Err: fs.ErrNotExist}
	err := NewRedactor([]string{"hunter2-is-the-password"}).Error(fmt.Errorf("apply: %w", cause))
	if want := "apply: open " + Redacted + ": file does not exist"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	var pathErr *fs.PathError
	if !errors.As(err, &pathErr) || !errors.Is(err, fs.ErrNotExist) {
		t.Error("the redacted error no longer unwraps to its cause")
	}
	if (*Redactor)(nil).Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
}
