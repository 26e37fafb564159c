package fleet

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// loadErrors loads fsys with lim and returns its errors as strings.
func loadErrors(t *testing.T, fsys fs.FS, lim limits) []string {
	t.Helper()
	_, err := load(fsys, lim)
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Load error = %v, want an ErrorList", err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Error())
	}
	return got
}

// withFiles is the valid fleet with some files replaced.
func withFiles(change map[string]string) fstest.MapFS {
	fsys := maps.Clone(validFleet())
	for file, content := range change {
		fsys[file] = &fstest.MapFile{Data: []byte(content)}
	}
	return fsys
}

// brokenBilling is a second, unrelated problem in each case below: the limits refuse
// one file and every other file's errors are still reported.
const brokenBilling = "apiVersion: meridian.dev/v1alpha1\nkind: Tenant\nmetadata: {name: billing}\nspec:\n  regions: [us-east-1]\n  regoins: []\n"

const billingError = `tenants/billing.yaml:6: spec.regoins: unknown field; did you mean "regions"?`

func nested(depth int) string {
	return strings.Repeat("{a: ", depth) + "1" + strings.Repeat("}", depth)
}

// TestLoadLimits feeds the loader one hostile file per case, next to an unrelated
// broken tenant, and checks the exact errors: the hostile file is refused with its
// name (and line) and what to do, and nothing else is lost.
func TestLoadLimits(t *testing.T) {
	small := defaultLimits
	small.totalBytes = 1000
	tests := []struct {
		name   string
		lim    limits
		change map[string]string
		want   []string
		// whole is set for the limits of a whole load, after which some files are
		// not read: the broken tenant's error is not expected then.
		whole bool
	}{{
		name:   "a values file larger than MaxFileBytes",
		change: map[string]string{"apps/web/defaults.yaml": "a: " + strings.Repeat("x", MaxFileBytes)},
		want:   []string{"apps/web/defaults.yaml: file is 4194307 bytes, more than the limit of 4194304; split it or move data out of the fleet repository"},
	}, {
		name:   "a tenant file larger than MaxFileBytes",
		change: map[string]string{"tenants/trucking.yaml": strings.Repeat("#", MaxFileBytes+1)},
		want:   []string{"tenants/trucking.yaml: file is 4194305 bytes, more than the limit of 4194304; split it or move data out of the fleet repository"},
	}, {
		name:   "a secrets file larger than MaxFileBytes",
		change: map[string]string{"tenants/trucking.secrets.sops.yaml": strings.Repeat("#", MaxFileBytes+1)},
		want:   []string{"tenants/trucking.secrets.sops.yaml: file is 4194305 bytes, more than the limit of 4194304; split it or move data out of the fleet repository"},
	}, {
		name:   "values nested exactly MaxDepth levels are fine",
		change: map[string]string{"apps/web/defaults.yaml": "a: " + nested(MaxDepth-1) + "\n"},
	}, {
		name:   "values nested deeper than MaxDepth",
		change: map[string]string{"apps/web/defaults.yaml": "layer: x\na: " + nested(MaxDepth) + "\n"},
		want:   []string{"apps/web/defaults.yaml:2: a" + strings.Repeat(".a", MaxDepth-1) + ": nested more than 100 levels deep; flatten it"},
	}, {
		name:   "a list nested deeper than MaxDepth in an app",
		change: map[string]string{"apps/api/app.yaml": "apiVersion: meridian.dev/v1alpha1\nkind: App\nmetadata: {name: api}\nspec:\n  kustomize: {path: base}\n  values:\n    deep: " + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + "\n"},
		want:   []string{"apps/api/app.yaml:7: " + shorten("spec.values.deep"+strings.Repeat("[0]", MaxDepth-3)) + ": nested more than 100 levels deep; flatten it"},
	}, {
		name:   "an alias to its own ancestor",
		change: map[string]string{"tenants/trucking/web.yaml": "a: &a {b: *a}\n"},
		want:   []string{"tenants/trucking/web.yaml:1: a" + strings.Repeat(".b", MaxDepth-1) + ": nested more than 100 levels deep; flatten it"},
	}, {
		name: "an alias bomb in a region refuses the region, not the tenants that name it",
		change: map[string]string{"regions/eu-west-2.yaml": "apiVersion: meridian.dev/v1alpha1\nkind: Region\nmetadata: {name: eu-west-2}\nspec:\n  values:\n" +
			"    a: &a [x, x, x, x, x, x, x, x, x, x]\n    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
			"    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n    f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"},
		want: []string{"regions/eu-west-2.yaml:6: spec.values.f[1][1][3][8][8][1]: document expands to more than 250000 nodes (aliases included); write it out plainly"},
	}, {
		name:   "an alias bomb in a secrets file",
		change: map[string]string{"tenants/trucking.secrets.sops.yaml": "web: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"},
		want:   []string{"tenants/trucking.secrets.sops.yaml:1: f[1][1][3][8][8][7]: document expands to more than 250000 nodes (aliases included); write it out plainly"},
	}, {
		name:   "a duplicate key in a secrets file",
		change: map[string]string{"tenants/trucking.secrets.sops.yaml": "web:\n  password: ENC[x]\nweb:\n  password: ENC[y]\nsops:\n  mac: ENC[z]\n"},
		want:   []string{"tenants/trucking.secrets.sops.yaml:3: web: duplicate key; it is already set on line 1, keep one of them"},
	}, {
		name:   "a tenant file that is only a document start (found by FuzzLoad)",
		change: map[string]string{"tenants/trucking.yaml": "---"},
		want:   []string{"tenants/trucking.yaml:1: the document is null; write a YAML mapping, or delete the file"},
	}, {
		name:   "a values file that is only an anchor (found by FuzzDecode)",
		change: map[string]string{"apps/web/defaults.yaml": "&00"},
		want:   []string{"apps/web/defaults.yaml:1: the document is null; write a YAML mapping, or delete the file"},
	}, {
		name:   "an empty list item (found by FuzzDecode)",
		change: map[string]string{"fleet.yaml": "apiVersion: meridian.dev/v1alpha1\nkind: Fleet\nmetadata: {name: acme}\nspec:\n  dns: {zone: fleet.example.com, hostedZoneID: Z0EXAMPLE, drain: [~]}\n  waves:\n    -\n"},
		want: []string{
			"fleet.yaml:5: spec.dns.drain[0]: list item is empty; fill it in or remove its -",
			"fleet.yaml:7: spec.waves[0]: list item is empty; fill it in or remove its -",
		},
	}, {
		name:   "NaN and infinity in values",
		change: map[string]string{"tenants/trucking/web.yaml": "a: .nan\nb: -.inf\nc: \".nan\"\nd: 1.5\n"},
		want: []string{
			"tenants/trucking/web.yaml:1: a: .nan is not a number a chart can be given (JSON, which charts and Kubernetes objects are made of, has no NaN or infinity); quote it if you mean the string",
			"tenants/trucking/web.yaml:2: b: -.inf is not a number a chart can be given (JSON, which charts and Kubernetes objects are made of, has no NaN or infinity); quote it if you mean the string",
		},
	}, {
		name:   "more files than the load's limit",
		whole:  true,
		lim:    limits{fileBytes: MaxFileBytes, files: 4, totalBytes: MaxTotalBytes, visits: maxLoadVisits},
		change: map[string]string{"tenants/billing.yaml": string(validFleet()["tenants/billing.yaml"].Data)},
		want:   []string{"apps/web/app.yaml: the repository holds more than 4 fleet files; this one and the ones after it are not read; move files out of the fleet repository"},
	}, {
		name:  "more bytes than the load's limit",
		whole: true,
		lim:   small,
		want:  []string{"apps/web/app.yaml: the fleet files read up to this one add up to more than 1000 bytes; it and the files after it are not read; move data out of the fleet repository"},
	}, {
		name:  "more YAML nodes than the load's limit",
		whole: true,
		lim:   limits{fileBytes: MaxFileBytes, files: MaxFiles, totalBytes: MaxTotalBytes, visits: 50},
		want:  []string{"apps/web/app.yaml: the fleet files decoded up to this one expand to more than 50 YAML nodes in all; it and the files after it are not read; make the fleet's files smaller"},
	}, {
		name:   "an absolute values file path",
		change: map[string]string{"apps/web/app.yaml": "apiVersion: meridian.dev/v1alpha1\nkind: App\nmetadata: {name: web}\nspec:\n  helm: {chart: chart}\n  valuesFiles: [/etc/passwd, 'a\\b.yaml']\n"},
		want: []string{
			`apps/web/app.yaml:6: spec.valuesFiles[0]: "/etc/passwd" is not a relative path; write a path relative to apps/web/app.yaml with forward slashes`,
			`apps/web/app.yaml:6: spec.valuesFiles[1]: "a\\b.yaml" is not a relative path; write a path relative to apps/web/app.yaml with forward slashes`,
		},
	}, {
		name:   "a Kustomize path leaving the repository",
		change: map[string]string{"apps/api/app.yaml": "apiVersion: meridian.dev/v1alpha1\nkind: App\nmetadata: {name: api}\nspec:\n  kustomize: {path: ../../..}\n"},
		want:   []string{`apps/api/app.yaml:5: spec.kustomize.path: "../../.." leaves the repository; fleet files may only name files inside it`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := tt.lim
			if lim == (limits{}) {
				lim = defaultLimits
			}
			change := maps.Clone(tt.change)
			if change == nil {
				change = map[string]string{}
			}
			if _, ok := change["tenants/billing.yaml"]; !ok {
				change["tenants/billing.yaml"] = brokenBilling
			}
			want := tt.want
			if !tt.whole {
				want = append(append([]string{}, want...), billingError)
			}
			fsys := withFiles(change)
			start := time.Now()
			got := loadErrors(t, fsys, lim)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("Load took %v", d)
			}
			if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// growingFS reports every file as empty but serves its content: a file that grew
// after it was measured, or a file system that does not know sizes.
type growingFS struct{ fstest.MapFS }

func (g growingFS) Stat(name string) (fs.FileInfo, error) {
	info, err := g.MapFS.Stat(name)
	if err != nil || info.IsDir() {
		return info, err
	}
	return sizeless{info}, nil
}

type sizeless struct{ fs.FileInfo }

func (sizeless) Size() int64 { return 0 }

// TestLoadLimitsReadingToo checks that MaxFileBytes holds while reading, not only by
// the size a file claims.
func TestLoadLimitsReadingToo(t *testing.T) {
	fsys := withFiles(map[string]string{"apps/web/defaults.yaml": strings.Repeat("#", MaxFileBytes+1)})
	got := loadErrors(t, growingFS{fsys}, defaultLimits)
	want := []string{"apps/web/defaults.yaml: file is more than the limit of 4194304 bytes; split it or move data out of the fleet repository"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

// dirFleet writes the valid fleet to a directory for LoadDir.
func dirFleet(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, validFleet()); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loadDirErrors(t *testing.T, dir string) []string {
	t.Helper()
	done := make(chan error, 1)
	go func() { _, err := LoadDir(dir); done <- err }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("LoadDir did not return within 30s")
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("LoadDir error = %v, want an ErrorList", err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Error())
	}
	return got
}

// TestLoadDirRefusesNamedPipe checks that a values file that is a FIFO is refused,
// instead of blocking the load until something writes to it.
func TestLoadDirRefusesNamedPipe(t *testing.T) {
	dir := dirFleet(t)
	fifo := filepath.Join(dir, "apps/web/defaults.yaml")
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	want := []string{"apps/web/defaults.yaml: is not a regular file (a named pipe); fleet files are plain files"}
	if diff := cmp.Diff(want, loadDirErrors(t, dir)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

// TestLoadDirSymlinkedFleetFiles checks that a tenant file or app directory that is a
// symlink is read when it stays inside the repository and refused by name when it
// leaves it; before, both were left out without a word, and a tenant left out is a
// tenant pruned.
func TestLoadDirSymlinkedFleetFiles(t *testing.T) {
	t.Run("inside the repository", func(t *testing.T) {
		dir := dirFleet(t)
		if err := os.Rename(filepath.Join(dir, "tenants/billing.yaml"), filepath.Join(dir, "billing.yaml")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../billing.yaml", filepath.Join(dir, "tenants/billing.yaml")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "apps/api"), filepath.Join(dir, "api")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../api", filepath.Join(dir, "apps/api")); err != nil {
			t.Fatal(err)
		}
		m, err := LoadDir(dir)
		if err != nil {
			t.Fatalf("LoadDir: %v", err)
		}
		if m.Tenant("billing") == nil || m.App("api") == nil {
			t.Errorf("symlinked tenant or app left out: tenant %v, app %v", m.Tenant("billing"), m.App("api"))
		}
	})
	t.Run("out of the repository", func(t *testing.T) {
		outside := t.TempDir()
		if err := os.WriteFile(filepath.Join(outside, "billing.yaml"), []byte(brokenBilling), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(outside, "api"), 0o700); err != nil {
			t.Fatal(err)
		}
		dir := dirFleet(t)
		for link, target := range map[string]string{"tenants/billing.yaml": "billing.yaml", "apps/api": "api"} {
			if err := os.RemoveAll(filepath.Join(dir, link)); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(outside, target), filepath.Join(dir, link)); err != nil {
				t.Fatal(err)
			}
		}
		got := loadDirErrors(t, dir)
		if len(got) != 2 || !strings.HasPrefix(got[0], "apps/api: cannot read: ") || !strings.HasPrefix(got[1], "tenants/billing.yaml: cannot read: ") {
			t.Errorf("errors = %q, want apps/api and tenants/billing.yaml refused", got)
		}
	})
}

// TestFleetDNSNames checks the zone and the length of the DNS names an exposed app
// gets; FuzzHostnames checks the same against arbitrary names.
func TestFleetDNSNames(t *testing.T) {
	fleetWithZone := func(zone string) string {
		return "apiVersion: meridian.dev/v1alpha1\nkind: Fleet\nmetadata: {name: acme}\nspec:\n  dns: {zone: '" + zone + "', hostedZoneID: Z0EXAMPLE}\n"
	}
	long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + ".com" // 125
	tests := []struct {
		name string
		fsys fstest.MapFS
		want []string
	}{{
		name: "empty zone",
		fsys: withFiles(map[string]string{"fleet.yaml": fleetWithZone("")}),
		want: []string{`fleet.yaml:5: spec.dns.zone: "" is not a DNS zone name such as fleet.example.com: it needs a domain and its parent, at least two labels`},
	}, {
		name: "zone of one dot",
		fsys: withFiles(map[string]string{"fleet.yaml": fleetWithZone(".")}),
		want: []string{`fleet.yaml:5: spec.dns.zone: "." is not a DNS zone name such as fleet.example.com: it needs a domain and its parent, at least two labels`},
	}, {
		name: "zone label longer than 63",
		fsys: withFiles(map[string]string{"fleet.yaml": fleetWithZone(strings.Repeat("z", 64) + ".example.com")}),
		want: []string{`fleet.yaml:5: spec.dns.zone: "` + strings.Repeat("z", 64) + `.example.com" is not a DNS zone name such as fleet.example.com: its label "` + strings.Repeat("z", 64) + `" is 64 characters, more than DNS allows (63)`},
	}, {
		name: "regional name that fits DNS but not with the registry prefix",
		fsys: hostnameFleet(long, strings.Repeat("t", 63), strings.Repeat("r", 56), "web"), // 250 characters
		want: []string{`tenants/t.yaml:6: spec.apps[0].name: the app's regional DNS name web.` + strings.Repeat("t", 63) + "." + strings.Repeat("r", 56) + "." + long + ` is 250 characters, more than 243 (DNS allows 253, less the "_meridian." in front of the record that marks the name as Meridian's); shorten the tenant name, the subdomain or the zone`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, loadErrors(t, tt.fsys, defaultLimits)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	// The longest regional name that is allowed loads.
	m, err := Load(hostnameFleet(long, strings.Repeat("t", 63), strings.Repeat("r", 49), "web"))
	if err != nil {
		t.Fatalf("243-character name refused: %v", err)
	}
	_, regional, _ := m.Placements()[0].Hostnames(m.Fleet.Spec.DNS.Zone)
	if len(regional) != maxHostnameLength {
		t.Errorf("regional name is %d characters, want the limit %d", len(regional), maxHostnameLength)
	}
}
