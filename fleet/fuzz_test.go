package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"
)

// fuzzTimeLimit bounds one input of a fuzz target. It is far above what any input
// takes (milliseconds); an input that needs it is super-linear somewhere.
const fuzzTimeLimit = 10 * time.Second

// checkTime fails when an input took longer than fuzzTimeLimit.
func checkTime(t *testing.T, start time.Time, what string) {
	t.Helper()
	if d := time.Since(start); d > fuzzTimeLimit {
		t.Fatalf("%s took %v, more than %v", what, d, fuzzTimeLimit)
	}
}

// decodeKinds are the things a fleet file can be decoded as, by FuzzDecode.
var decodeKinds = []struct {
	file string
	new  func() any // nil for a values file
}{
	{FleetFile, func() any { return new(Fleet) }},
	{"regions/us-east-1.yaml", func() any { return new(Region) }},
	{"apps/web/app.yaml", func() any { return new(App) }},
	{"tenants/trucking.yaml", func() any { return new(Tenant) }},
	{"apps/web/defaults.yaml", nil},
}

// hostileYAML are inputs every fuzz target over YAML starts from, besides the files of
// the valid fleet: aliases, recursion, nesting and odd scalars.
var hostileYAML = []string{
	"",
	"---\n---\n",
	"a: &a [x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b, *b]\n",
	"a: &a {b: *a}\n",
	"&a [*a]\n",
	strings.Repeat("[", 150) + strings.Repeat("]", 150),
	strings.Repeat("{a: ", 150) + "1" + strings.Repeat("}", 150),
	"a: !!binary aGVsbG8=\nb: 2001-12-14\nc: .nan\nd: 1e400\ne: 0x1F\nf: 1.0\ng: -0.0\n",
	"? [a, b]\n: c\n~: d\n1: e\n",
	"<<: {a: 1}\nb: 2\n",
	"a: !custom x\nb: !!str 1\nc: !!int \"2\"\n",
	"a: 1\na: 2\n",
	"\xef\xbb\xbfa: 1\n",
	"a: \"\\x00\\u2028\"\n",
	"apiVersion: meridian.dev/v1alpha1\nkind: Fleet\nmetadata: {name: acme}\nspec:\n  dns: {zone: fleet.example.com, hostedZoneID: Z0}\n  safety: {maxDeletePercent: 0x10}\n",
}

// FuzzDecode decodes arbitrary bytes as each kind of fleet file and as a values file.
// It never panics and finishes in bounded time; every error names the file; and what
// decodes without error encodes back to YAML that decodes, again without error, to
// the same value.
func FuzzDecode(f *testing.F) {
	fleet := validFleet()
	for i, k := range decodeKinds {
		f.Add(uint8(i), fleet[k.file].Data)
		for _, h := range hostileYAML {
			f.Add(uint8(i), []byte(h))
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		k := decodeKinds[int(kind)%len(decodeKinds)]
		start := time.Now()
		first, err := decodeAs(k.file, k.new, data)
		checkTime(t, start, "decoding")
		if err != nil {
			checkErrorsNameFile(t, err, k.file)
			return
		}
		out, err := yaml.Marshal(first)
		if err != nil {
			t.Fatalf("decoded %#v, which does not encode: %v", first, err)
		}
		second, err := decodeAs(k.file, k.new, out)
		if err != nil {
			t.Fatalf("decoded, encoded as\n%s\nand that does not decode: %v", out, err)
		}
		// An empty list and a missing one mean the same to the loader (it checks
		// len, never nil), and omitempty writes neither, so they compare equal.
		if diff := cmp.Diff(first, second, cmpopts.IgnoreUnexported(Source{}), cmpopts.EquateEmpty(), integralFloats); diff != "" {
			t.Fatalf("decode, encode, decode changed the value (-first +second):\n%s\nencoded:\n%s", diff, out)
		}
	})
}

// integralFloats compares a float64 with an integral value (1.0, -0.0) as the int it
// equals: yaml.v3 writes float64(1) as 1, which reads back as an int. Nothing in
// Meridian writes values back to YAML to read them again; the render cache digests
// them as JSON, where 1.0 and 1 are one number.
var integralFloats = cmp.FilterValues(func(a, b any) bool {
	_, af := a.(float64)
	_, bf := b.(float64)
	return af != bf
}, cmp.Transformer("integralFloat", func(v any) any {
	if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int(f)
	}
	return v
}))

// decodeAs decodes data the way the loader decodes the file: into the kind's type, or
// as a values file when newKind is nil.
func decodeAs(file string, newKind func() any, data []byte) (any, error) {
	if newKind == nil {
		v, _, errs := decodeValues(file, data)
		if len(errs) > 0 {
			return nil, errs
		}
		return v, nil
	}
	out := newKind()
	if err := Decode(file, data, out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkErrorsNameFile checks that err is an ErrorList whose every error names file.
func checkErrorsNameFile(t *testing.T, err error, file string) {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("error %v (%T) is not a non-empty ErrorList", err, err)
	}
	for _, e := range list {
		if e.File != file || !strings.HasPrefix(e.Error(), file+":") {
			t.Errorf("error %q does not name %s", e.Error(), file)
		}
	}
}

// fuzzLoadFiles are the files of the valid fleet FuzzLoad replaces, one per kind of
// file the loader reads.
var fuzzLoadFiles = []string{
	FleetFile,
	"regions/us-east-1.yaml",
	"apps/web/app.yaml",
	"apps/web/defaults.yaml",
	"tenants/trucking.yaml",
	"tenants/trucking/web.yaml",
	"tenants/trucking.secrets.sops.yaml",
}

// FuzzLoad replaces one file of a valid fleet with arbitrary bytes and loads it. Load
// never panics and finishes in bounded time; it returns a model or an ErrorList, the
// same one every time; every error names a file or directory of the repository, at a
// line the file has; and a model that loads expands into placements whose DNS names
// fit in Route53.
func FuzzLoad(f *testing.F) {
	fleet := validFleet()
	for i, file := range fuzzLoadFiles {
		f.Add(uint8(i), fleet[file].Data)
		for _, h := range hostileYAML {
			f.Add(uint8(i), []byte(h))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		fsys := maps.Clone(validFleet())
		fsys[fuzzLoadFiles[int(which)%len(fuzzLoadFiles)]] = &fstest.MapFile{Data: data}

		start := time.Now()
		m, err := Load(fsys)
		checkTime(t, start, "loading")
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("Load error %v (%T) is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				checkLocated(t, fsys, e)
			}
			if _, again := Load(fsys); again == nil || again.Error() != err.Error() {
				t.Fatalf("a second Load of the same files reports\n%v\nnot\n%v", again, err)
			}
			return
		}
		zone := m.Fleet.Spec.DNS.Zone
		for _, p := range m.Placements() {
			if global, regional, ok := p.Hostnames(zone); ok {
				checkHostname(t, global)
				checkHostname(t, regional)
			}
		}
	})
}

// checkLocated checks that e names a file or directory of fsys and, when it gives a
// line, one that the file has.
func checkLocated(t *testing.T, fsys fstest.MapFS, e *Error) {
	t.Helper()
	if e.File == "" {
		t.Fatalf("error %q names no file", e.Error())
	}
	if _, err := fs.Stat(fsys, e.File); err != nil {
		t.Fatalf("error %q names %s, which is not in the repository", e.Error(), e.File)
	}
	if e.Line < 0 {
		t.Fatalf("error %q has line %d", e.Error(), e.Line)
	}
	if f, ok := fsys[e.File]; ok && e.Line > bytes.Count(f.Data, []byte("\n"))+1 {
		t.Fatalf("error %q names line %d of a file of %d lines", e.Error(), e.Line, bytes.Count(f.Data, []byte("\n"))+1)
	}
}

// dnsLabel is one label of a host name as Route53 stores it: lowercase letters,
// digits and '-', starting and ending with a letter or digit, 1 to 63 characters.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// checkHostname checks that name is a host name Route53 takes, and that the TXT
// registry record Meridian writes next to it (docs/dns.md) fits too.
func checkHostname(t *testing.T, name string) {
	t.Helper()
	if !validHostname(name) {
		t.Fatalf("host name %q is not a valid Route53 name: 253 characters at most, lowercase labels of 1 to 63 letters, digits and '-'", name)
	}
	if registry := "_meridian." + name; len(registry) > 253 {
		t.Fatalf("host name %q is %d characters: its registry record %s is %d, more than Route53's 253", name, len(name), registry, len(registry))
	}
}

// validHostname is an independent statement of a DNS host name in Route53's limits.
func validHostname(name string) bool {
	if len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if !dnsLabel.MatchString(label) {
			return false
		}
	}
	return true
}

// FuzzHostnames gives the names that make up an exposed app's DNS names (the zone,
// a tenant, a region and the app's subdomain) arbitrary values and loads the fleet.
// Compared with an independent statement of what Route53 takes: the loader accepts
// exactly the names whose DNS names fit, and then every host name Hostnames builds
// fits; each name it refuses is refused with an error at its own file and field.
func FuzzHostnames(f *testing.F) {
	f.Add("fleet.example.com", "trucking", "us-east-1", "web")
	f.Add("fleet.example.com.", "t", "r", "w")
	f.Add("", "trucking", "us-east-1", "web")
	f.Add(".", "trucking", "us-east-1", "web")
	f.Add("example", "trucking", "us-east-1", "web")
	f.Add("Fleet.Example.COM", "trucking", "us-east-1", "web")
	f.Add(strings.Repeat("z", 64)+".example.com", "trucking", "us-east-1", "web")
	f.Add(strings.Repeat("a.", 90)+"com", strings.Repeat("t", 63), "us-east-1", "web")
	f.Add(strings.Repeat("a", 60)+"."+strings.Repeat("b", 60)+".com", strings.Repeat("t", 63), strings.Repeat("r", 63), "web")
	f.Add("fleet.example.com", "Trucking", "us_east_1", "-web")
	f.Add("fleet..example.com", "trucking", "us-east-1", "web")
	f.Add("fleet.example.com", "trucking", "us-east-1", "w\u0130b")
	f.Add(strings.Repeat("a", 60)+"."+strings.Repeat("b", 60)+".com", strings.Repeat("t", 63), strings.Repeat("r", 56), "web")
	f.Add("fleet.example.com", "kube-system", "us-east-1", "web")
	f.Add("fleet.example.com", "ingress-nginx", "us-east-1", "web")
	f.Fuzz(func(t *testing.T, zone, tenant, region, subdomain string) {
		// The names as the fleet files hold them: JSON strings make invalid UTF-8 valid.
		for _, s := range []*string{&zone, &tenant, &region, &subdomain} {
			b, _ := json.Marshal(*s)
			_ = json.Unmarshal(b, s)
		}
		fsys := hostnameFleet(zone, tenant, region, subdomain)
		start := time.Now()
		m, err := Load(fsys)
		checkTime(t, start, "loading")

		// What an independent reading of DNS says should be refused, and where.
		want := map[string]bool{}
		z := strings.TrimSuffix(zone, ".")
		if !validHostname(z) || !strings.Contains(z, ".") {
			want["fleet.yaml: spec.dns.zone"] = true
		}
		if !dnsLabel.MatchString(tenant) {
			want["tenants/t.yaml: metadata.name"] = true
		}
		// A namespace Kubernetes, Meridian or the region's ingress controller (by
		// default) owns is no tenant's name.
		if tenant == "default" || strings.HasPrefix(tenant, "kube-") || tenant == "meridian-system" || tenant == "ingress-nginx" {
			want["tenants/t.yaml: metadata.name"] = true
		}
		if !dnsLabel.MatchString(region) {
			want["regions/r.yaml: metadata.name"] = true
		}
		if !dnsLabel.MatchString(subdomain) {
			want["apps/web/app.yaml: spec.expose.subdomain"] = true
		}
		// The length is checked even when a name is wrong too: each is a change to make.
		if regional := subdomain + "." + tenant + "." + region + "." + z; len("_meridian."+regional) > 253 {
			want["tenants/t.yaml: spec.apps[0].name"] = true
		}

		if err == nil {
			if len(want) > 0 {
				t.Fatalf("Load accepted zone %q, tenant %q, region %q, subdomain %q; want refusals at %v", zone, tenant, region, subdomain, slices.Sorted(maps.Keys(want)))
			}
			for _, p := range m.Placements() {
				global, regional, ok := p.Hostnames(m.Fleet.Spec.DNS.Zone)
				if !ok {
					t.Fatalf("placement %s is exposed, but Hostnames says it is not", p.ID())
				}
				checkHostname(t, global)
				checkHostname(t, regional)
			}
			return
		}
		var list ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("Load error %v (%T) is not an ErrorList", err, err)
		}
		got := map[string]bool{}
		for _, e := range list {
			checkLocated(t, fsys, e)
			got[e.File+": "+e.Field] = true
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("zone %q, tenant %q, region %q, subdomain %q: refusals (-want +got):\n%s\nerrors:\n%v", zone, tenant, region, subdomain, diff, err)
		}
	})
}

// hostnameFleet is a fleet of one region, one exposed app and one tenant running it,
// with the given names written as YAML strings.
func hostnameFleet(zone, tenant, region, subdomain string) fstest.MapFS {
	// Go's ASCII quoting escapes every control and non-ASCII character the way YAML's
	// double-quoted strings read them, for valid UTF-8.
	q := strconv.QuoteToASCII
	file := func(format string, args ...any) *fstest.MapFile {
		return &fstest.MapFile{Data: fmt.Appendf(nil, format, args...)}
	}
	return fstest.MapFS{
		"fleet.yaml": file("apiVersion: meridian.dev/v1alpha1\nkind: Fleet\nmetadata: {name: acme}\nspec:\n  dns: {zone: %s, hostedZoneID: Z0EXAMPLE}\n", q(zone)),
		"regions/r.yaml": file("apiVersion: meridian.dev/v1alpha1\nkind: Region\nmetadata: {name: %s}\nspec:\n  awsRegion: us-east-1\n"+
			"  cluster: {kubeconfigContext: r}\n  endpoint: {type: CNAME, target: ingress.example.net}\n", q(region)),
		"apps/web/app.yaml": file("apiVersion: meridian.dev/v1alpha1\nkind: App\nmetadata: {name: web}\nspec:\n  kustomize: {path: base}\n"+
			"  expose: {subdomain: %s, port: 443, protocol: HTTPS, healthCheck: {path: /healthz}}\n", q(subdomain)),
		"apps/web/base/kustomization.yaml": file("resources: []\n"),
		"tenants/t.yaml":                   file("apiVersion: meridian.dev/v1alpha1\nkind: Tenant\nmetadata: {name: %s}\nspec:\n  regions: [%s]\n  apps: [{name: web}]\n", q(tenant), q(region)),
	}
}

// FuzzMergeValues merges three layers built from arbitrary bytes and checks Merge's
// contract: it never panics; the result shares no map or list with a layer, and
// changing it changes no layer; merging one layer, or a layer with an empty one,
// gives that layer; a later layer's scalar or list wins at its path, and a path no
// later layer touches keeps the earlier value; and merging three layers at once is
// merging the first two, then the third.
func FuzzMergeValues(f *testing.F) {
	f.Add([]byte{}, []byte{}, []byte{})
	f.Add([]byte{5, 0, 2, 1, 2}, []byte{5, 0, 1, 9}, []byte{5, 1, 5, 0, 2, 3})
	f.Add([]byte{5, 0, 5, 1, 1, 7}, []byte{5, 0, 6, 2, 7, 7}, []byte{0, 1})
	f.Add([]byte{6, 3, 5, 0, 1, 1, 7, 7}, []byte{5, 0, 0}, []byte{5, 0, 5, 0, 5, 0, 1, 4})
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		layers := []Values{genValues(a), genValues(b), genValues(c)}
		before := make([]Values, len(layers))
		for i, l := range layers {
			before[i] = copyValues(l)
		}

		got := Merge(layers...)
		if diff := cmp.Diff(before, layers); diff != "" {
			t.Fatalf("Merge changed its layers (-before +after):\n%s", diff)
		}
		inputs := containers(map[uintptr]bool{}, layers)
		for p := range containers(map[uintptr]bool{}, got) {
			if inputs[p] {
				t.Fatal("the result shares a map or list with a layer")
			}
		}
		scribble(got)
		if diff := cmp.Diff(before, layers); diff != "" {
			t.Fatalf("changing the result changed a layer (-before +after):\n%s", diff)
		}

		for _, l := range before {
			want := plain(l)
			for name, merged := range map[string]Values{
				"Merge(l)": Merge(l), "Merge(l, {})": Merge(l, Values{}), "Merge({}, l)": Merge(Values{}, l), "Merge(nil, l, nil)": Merge(nil, l, nil),
			} {
				if diff := cmp.Diff(want, merged); diff != "" {
					t.Fatalf("%s is not l (-want +got):\n%s", name, diff)
				}
			}
		}

		all := Merge(before...)
		if diff := cmp.Diff(Merge(Merge(before[0], before[1]), before[2]), all); diff != "" {
			t.Fatalf("Merge(a, b, c) is not Merge(Merge(a, b), c) (-fold +all):\n%s", diff)
		}
		checkLaterWins(t, Merge(before[0], before[1]), before[0], before[1], "")
	})
}

// checkLaterWins checks merged = Merge(lo, hi) key by key, at path.
func checkLaterWins(t *testing.T, merged, lo, hi map[string]any, path string) {
	t.Helper()
	for k, hv := range hi {
		at := join(path, k)
		mv, ok := merged[k]
		if !ok {
			t.Fatalf("%s: set by the later layer, missing from the result", at)
		}
		hm, hIsMap := asMap(hv)
		lm, lIsMap := asMap(lo[k])
		switch {
		case hIsMap && lIsMap:
			mm, ok := asMap(mv)
			if !ok {
				t.Fatalf("%s: both layers hold maps, the result %T", at, mv)
			}
			checkLaterWins(t, mm, lm, hm, at)
		case hIsMap:
			if diff := cmp.Diff(plain(map[string]any{k: hv}), plain(map[string]any{k: mv})); diff != "" {
				t.Fatalf("%s: the later layer's map does not win (-want +got):\n%s", at, diff)
			}
		default:
			if diff := cmp.Diff(hv, mv); diff != "" {
				t.Fatalf("%s: the later layer's value does not win (-want +got):\n%s", at, diff)
			}
		}
	}
	for k, lv := range lo {
		if _, ok := hi[k]; ok {
			continue
		}
		if diff := cmp.Diff(plain(map[string]any{k: lv}), plain(map[string]any{k: merged[k]})); diff != "" {
			t.Fatalf("%s: set only by the earlier layer, changed (-want +got):\n%s", join(path, k), diff)
		}
	}
}

// valueGen builds values from fuzz bytes, like a tiny program: each byte picks the
// next value's kind, so that mutations of the bytes make maps, lists, scalars and
// values shared between places (as YAML aliases make them).
type valueGen struct {
	data   []byte
	shared []any // maps and lists made so far, which a later value may reuse
	// budget is how many more values (counting every use of a shared one) the layer
	// may hold: reuse nests shared values in ever larger ones, which Merge and the
	// checks copy out into trees of exponential size.
	budget int
}

func (g *valueGen) next() byte {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return b
}

// genValues builds one layer: a map, empty when data is.
func genValues(data []byte) Values {
	g := &valueGen{data: data, budget: 2000}
	return Values(g.mapping(0))
}

func (g *valueGen) mapping(depth int) map[string]any {
	m := map[string]any{}
	for n := int(g.next() % 5); n > 0; n-- {
		m[string(rune('a'+g.next()%4))] = g.value(depth + 1)
	}
	g.shared = append(g.shared, m)
	return m
}

func (g *valueGen) value(depth int) any {
	if g.budget--; g.budget < 0 {
		return nil
	}
	kind := g.next() % 8
	if depth > 5 && kind >= 5 {
		kind = 1
	}
	switch kind {
	case 0:
		return nil
	case 1:
		return string(rune('p' + g.next()%4))
	case 2:
		return int(g.next())
	case 3:
		return g.next()%2 == 0
	case 4:
		return float64(g.next()) / 4
	case 5:
		return g.mapping(depth)
	case 6:
		l := make([]any, g.next()%4)
		for i := range l {
			l[i] = g.value(depth + 1)
		}
		g.shared = append(g.shared, l)
		return l
	default:
		if len(g.shared) == 0 {
			return nil
		}
		v := g.shared[int(g.next())%len(g.shared)]
		if g.budget -= size(v); g.budget < 0 {
			return nil
		}
		return v
	}
}

// size counts the values in v, every use of a shared one included.
func size(v any) int {
	n := 1
	switch t := v.(type) {
	case map[string]any:
		for _, x := range t {
			n += size(x)
		}
	case []any:
		for _, x := range t {
			n += size(x)
		}
	}
	return n
}

// copyValues deep-copies v without Merge, to compare layers before and after.
func copyValues(v Values) Values {
	if v == nil {
		return nil
	}
	return Values(copyAny(map[string]any(v)).(map[string]any))
}

func copyAny(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = copyAny(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = copyAny(x)
		}
		return out
	}
	return v
}

// plain is v as Merge returns it: a Values of map[string]any maps, empty for nil.
func plain(v map[string]any) Values {
	out := Values{}
	for k, x := range v {
		if m, ok := asMap(x); ok {
			out[k] = map[string]any(plain(m))
			continue
		}
		out[k] = copyAny(x)
	}
	return out
}

// containers collects the addresses of the maps and non-empty lists reachable from v.
func containers(seen map[uintptr]bool, v any) map[uintptr]bool {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		if rv.IsNil() {
			return seen
		}
		seen[rv.Pointer()] = true
		for _, k := range rv.MapKeys() {
			containers(seen, rv.MapIndex(k).Interface())
		}
	case reflect.Slice:
		if rv.Cap() > 0 {
			seen[rv.Pointer()] = true
		}
		for i := range rv.Len() {
			containers(seen, rv.Index(i).Interface())
		}
	}
	return seen
}

// scribble changes every map and list reachable from v.
func scribble(v any) {
	switch t := v.(type) {
	case map[string]any:
		for _, k := range slices.Collect(maps.Keys(t)) {
			scribble(t[k])
			t[k+"-changed"] = "changed"
		}
		t["added"] = true
	case Values:
		scribble(map[string]any(t))
	case []any:
		for i := range t {
			scribble(t[i])
			t[i] = "changed"
		}
	}
}
