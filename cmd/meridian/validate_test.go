package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/golden"
	"meridian.dev/meridian/internal/testenv/sopstest"
)

const example = "../../fleet-example"

func TestValidateExample(t *testing.T) {
	t.Setenv("SOPS_AGE_KEY", "")
	t.Setenv("SOPS_AGE_KEY_FILE", filepath.Join(example, "demo-age-key.txt"))
	var out bytes.Buffer
	if err := runValidate(t.Context(), &out, validateOptions{fleetDir: example, output: "text"}); err != nil {
		t.Fatalf("validate fleet-example: %v\n%s", err, out.String())
	}
	want := example + " is valid: 3 tenants, 3 regions, 3 apps, 14 placements, 1 addon (3 addon units); 85 rendered objects fit Kubernetes 1.37\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

// TestValidateBrokenExample breaks a copy of fleet-example five ways and expects five
// errors, each naming its file and line.
func TestValidateBrokenExample(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(example)); err != nil {
		t.Fatal(err)
	}
	edit := func(file, old, new string) {
		t.Helper()
		p := filepath.Join(dir, file)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), old) {
			t.Fatalf("%s no longer contains %q; update this test to the example", file, old)
		}
		write(t, p, strings.Replace(string(data), old, new, 1))
	}
	// 1. an unknown field
	edit("regions/eu-west-2.yaml", "  awsRegion:", "  awsRgion: typo\n  awsRegion:")
	// 2. a duplicate tenant
	data, err := os.ReadFile(filepath.Join(dir, "tenants/trucking.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "tenants/trucking-copy.yaml"), string(data))
	// 3. a tenant naming a missing region
	edit("tenants/charging-stations-ca.yaml", "regions: [us-east-1]", "regions: [us-east-1, ca-central-1]")
	// 4. an app with neither chart nor base
	edit("apps/worker/app.yaml", "  helm:\n    chart: chart\n", "")
	// 5. a values file that is not YAML
	edit("tenants/logistics-eu.yaml", "    - name: portal\n", "    - name: portal\n      valuesFiles: [logistics-eu/portal.yaml]\n")
	write(t, filepath.Join(dir, "tenants/logistics-eu/portal.yaml"), "replicas: 2\n\tresources: {}\n")

	var out bytes.Buffer
	err = runValidate(t.Context(), &out, validateOptions{fleetDir: dir, output: "text"})
	var exit exitError
	if !errors.As(err, &exit) || exit.code != 1 {
		t.Fatalf("validate = %v, want exit status 1", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("got %d lines, want 5 errors and a summary:\n%s", len(lines), out.String())
	}
	located := regexp.MustCompile(`^` + regexp.QuoteMeta(dir) + `/[a-z0-9/.-]+\.yaml:[0-9]+: `)
	for _, l := range lines[:5] {
		if !located.MatchString(l) {
			t.Errorf("error does not start with file:line: %s", l)
		}
	}
	got := strings.ReplaceAll(out.String(), dir, "COPY")
	want := `COPY/apps/worker/app.yaml:6: spec: app has neither a Helm chart nor a Kustomize base; set spec.helm.chart (or spec.helm.repository) or spec.kustomize.path
COPY/regions/eu-west-2.yaml:6: spec.awsRgion: unknown field; did you mean "awsRegion"?
COPY/tenants/charging-stations-ca.yaml:7: spec.regions[1]: region "ca-central-1" does not exist; create regions/ca-central-1.yaml or fix the name
COPY/tenants/logistics-eu/portal.yaml:2: not valid YAML: found a tab character that violates indentation
COPY/tenants/trucking.yaml:5: metadata.name: duplicate tenant "trucking": tenants/trucking-copy.yaml:5 already defines it; rename one of them or delete the copy
COPY is not valid: 5 errors
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}

	out.Reset()
	_ = runValidate(t.Context(), &out, validateOptions{fleetDir: dir, output: "json"})
	var report validateReport
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("json output: %v\n%s", err, out.String())
	}
	if report.Valid || len(report.Errors) != 5 {
		t.Errorf("json report: valid=%v with %d errors, want invalid with 5", report.Valid, len(report.Errors))
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestValidateFixtures runs validate on copies of fleet-example, each with the files
// of one directory under testdata/validate laid over it, and compares the text and
// JSON output, with the exit status, with the golden files next to the directory.
// Regenerate them with -update, then read them.
func TestValidateFixtures(t *testing.T) {
	tests := []struct {
		name     string
		overlay  string // under testdata/validate; empty for fleet-example as it is
		strict   bool
		key      bool // give the demo age key
		noRender bool
	}{
		// Rendered objects against the bundled schemas: an unknown field, a wrong type,
		// a missing required field and an apiVersion Kubernetes 1.37 does not serve.
		{name: "schema", overlay: "schema", key: true},
		// A custom resource against its CRD in the fleet, and one without a CRD.
		{name: "crd", overlay: "crd", key: true},
		// A *.sops.yaml that was never encrypted and a plain value added to an
		// encrypted one; SOPS's .sops.yaml configuration is not a SOPS file.
		{name: "sops", overlay: "sops", key: true},
		// A password in a tenant's plain values, rendered into a Secret: warnings,
		// errors with --strict.
		{name: "plain-secret", overlay: "plain-secret", key: true},
		{name: "plain-secret-strict", overlay: "plain-secret", key: true, strict: true},
		// A cluster-scoped kind refused while rendering, and one the renderer lets
		// through but the schemas know is cluster-scoped.
		{name: "tenant-policy", overlay: "tenant-policy", key: true},
		// DNS names longer than Route53 allows.
		{name: "dns", overlay: "dns", key: true},
		// A region of a version with no bundled schemas: a warning.
		{name: "version", overlay: "version", key: true},
		// A Secret whose data is not base64: refused, its value never shown.
		{name: "secret-schema", overlay: "secret-schema", key: true},
		// Without the key, secrets are replaced by placeholders and the fleet renders.
		{name: "no-key"},
		// Notes are not warnings: --strict passes without the key too.
		{name: "no-key-strict", strict: true},
		// --no-render checks the fleet files only: the broken Deployment passes.
		{name: "schema-no-render", overlay: "schema", key: true, noRender: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SOPS_AGE_KEY", "")
			t.Setenv("SOPS_AGE_KEY_FILE", "")
			if tt.key {
				t.Setenv("SOPS_AGE_KEY_FILE", filepath.Join(example, "demo-age-key.txt"))
			}
			dir := overlayExample(t, tt.overlay)
			for _, format := range []string{"text", "json"} {
				var out bytes.Buffer
				err := runValidate(t.Context(), &out, validateOptions{fleetDir: dir, output: format, strict: tt.strict, noRender: tt.noRender, chartCache: t.TempDir()})
				status := 0
				var exit exitError
				switch {
				case errors.As(err, &exit):
					status = exit.code
				case err != nil:
					t.Fatalf("validate: %v", err)
				}
				got := strings.ReplaceAll(out.String(), dir, "FLEET") + fmt.Sprintf("exit status %d\n", status)
				golden.Check(t, filepath.Join("testdata", "validate", tt.name+"."+format), []byte(got))
				assertNoDecryptedValues(t, out.String())
			}
		})
	}
}

// overlayExample copies fleet-example to a temporary directory and lays the files of
// testdata/validate/<overlay> over it.
func overlayExample(t *testing.T, overlay string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(example)); err != nil {
		t.Fatal(err)
	}
	if overlay == "" {
		return dir
	}
	src := filepath.Join("testdata", "validate", overlay)
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		write(t, filepath.Join(dir, rel), string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// assertNoDecryptedValues fails if output holds a value of fleet-example's secrets
// files, or its base64 form.
func assertNoDecryptedValues(t *testing.T, output string) {
	t.Helper()
	files := map[string][]byte{}
	for _, f := range []string{"tenants/trucking.secrets.sops.yaml", "tenants/charging-stations-ca.secrets.sops.yaml"} {
		data, err := os.ReadFile(filepath.Join(example, f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = data
	}
	values := sopstest.Values(t, filepath.Join(example, "demo-age-key.txt"), files)
	if hits := sopstest.Find(values, map[string][]byte{"output": []byte(output)}); len(hits) > 0 {
		t.Errorf("validate printed decrypted secrets: %v", hits)
	}
}

// TestCheckSOPSFiles checks which values of a SOPS file must be encrypted, by the
// rules its own sops metadata records, wherever the file is in the repository.
func TestCheckSOPSFiles(t *testing.T) {
	const enc = "ENC[AES256_GCM,data:AAAA,iv:BBBB,tag:CCCC,type:str]"
	meta := func(rule string) string {
		return "sops:\n  mac: " + enc + "\n  version: 3.13.3\n" + rule
	}
	fsys := fstest.MapFS{
		".sops.yaml": {Data: []byte("creation_rules: []\n")},
		"a/default.sops.yaml": {Data: []byte("db:\n  password: " + enc + "\n  user: admin\n  note_unencrypted: plain on purpose\n  hosts:\n    - " + enc + "\n    - db2\n  empty: ''\n  unset: null\n" +
			meta("  unencrypted_suffix: _unencrypted\n"))},
		"b/regex.sops.yml": {Data: []byte("password: plain-one\nuser: admin\nnested:\n  password: " + enc + "\n" +
			meta("  encrypted_regex: ^password$\n"))},
		"c/suffix.sops.yaml": {Data: []byte("db_secret:\n  a: plain-two\nhost: db\n" + meta("  encrypted_suffix: _secret\n"))},
		"d/public.sops.yaml": {Data: []byte("public_url: https://x\ntoken: plain-three\n" + meta("  unencrypted_regex: ^public\n"))},
		"e/nomac.sops.yaml":  {Data: []byte("token: " + enc + "\nsops:\n  version: 3.13.3\n")},
		".git/x.sops.yaml":   {Data: []byte("token: never read\n")},
		"f/plain.yaml":       {Data: []byte("token: not a SOPS file\n")},
	}
	var got []string
	for _, e := range fleet.CheckSOPSFiles(fsys) {
		got = append(got, fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Field))
	}
	want := []string{
		"a/default.sops.yaml:3: db.user",
		"a/default.sops.yaml:7: db.hosts[1]",
		"b/regex.sops.yml:1: password",
		"c/suffix.sops.yaml:2: db_secret.a",
		"d/public.sops.yaml:2: token",
		"e/nomac.sops.yaml:2: sops",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	for _, e := range fleet.CheckSOPSFiles(fsys) {
		for _, secret := range []string{"admin", "db2", "plain-one", "plain-two", "plain-three"} {
			if strings.Contains(e.Error(), secret) {
				t.Errorf("error shows a value: %s", e)
			}
		}
	}
}
