package openapi

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"

	"k8s.io/kube-openapi/pkg/validation/spec"
)

//go:embed schemas/*.json.gz
var bundledFiles embed.FS

// Schemas are the OpenAPI schemas of the kinds one Kubernetes version serves.
// They are read-only and safe for concurrent use.
type Schemas struct {
	// Version is the Kubernetes version the schemas were read from, such as 1.37.2.
	Version string
	// Minor is Version's major.minor, such as 1.37.
	Minor string

	kinds map[string]kindInfo
	defs  map[string]*spec.Schema
}

var (
	loadMu sync.Mutex
	loaded = map[string]*Schemas{} // by minor
)

// Bundled lists the minor versions that have bundled schemas, oldest first.
func Bundled() []string {
	files, _ := fs.Glob(bundledFiles, "schemas/kubernetes-*.json.gz")
	var minors []string
	for _, f := range files {
		minors = append(minors, strings.TrimSuffix(strings.TrimPrefix(f, "schemas/kubernetes-"), ".json.gz"))
	}
	slices.SortFunc(minors, func(a, b string) int { return minorNumber(a) - minorNumber(b) })
	return minors
}

// ForVersion returns the bundled schemas for a cluster of a Kubernetes version
// such as 1.37.2. When no schemas are bundled for its minor version, the nearest
// bundled minor is used (the newer one on a tie) and note says so; an empty version
// takes the newest bundle, also with a note. Notes are meant as warnings: a minor
// version apart, kinds and fields may differ.
func ForVersion(version string) (s *Schemas, note string, err error) {
	minors := Bundled()
	if len(minors) == 0 {
		return nil, "", fmt.Errorf("no Kubernetes schemas are bundled")
	}
	want := minors[len(minors)-1]
	if version == "" {
		note = fmt.Sprintf("no spec.kubernetesVersion; checked against Kubernetes %s, the newest bundled schemas; set the cluster's version", want)
	} else {
		minor, err := minorOf(version)
		if err != nil {
			return nil, "", err
		}
		best := -1
		for i, m := range minors {
			if best < 0 || abs(minorNumber(m)-minorNumber(minor)) <= abs(minorNumber(minors[best])-minorNumber(minor)) {
				best = i
			}
		}
		want = minors[best]
		if want != minor {
			note = fmt.Sprintf("no schemas are bundled for Kubernetes %s; checked against %s, the nearest bundled version (bundled: %s)", minor, want, strings.Join(minors, ", "))
		}
	}
	s, err = load(want)
	return s, note, err
}

// load reads the bundle of a minor version once per process.
func load(minor string) (*Schemas, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	if s, ok := loaded[minor]; ok {
		return s, nil
	}
	file := "schemas/kubernetes-" + minor + ".json.gz"
	compressed, err := bundledFiles.ReadFile(file)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var b bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	s := &Schemas{Version: b.Version, Minor: minor, kinds: b.Kinds, defs: make(map[string]*spec.Schema, len(b.Schemas))}
	for name, raw := range b.Schemas {
		sch := new(spec.Schema)
		if err := json.Unmarshal(raw, sch); err != nil {
			return nil, fmt.Errorf("%s: schema %s: %w", file, name, err)
		}
		closeObjects(sch)
		s.defs[name] = sch
	}
	loaded[minor] = s
	return s, nil
}

// closeObjects makes every object schema that declares its properties refuse others,
// as kube-apiserver's strict field validation does, unless it says it keeps unknown
// fields or gives a schema for additional ones. It also drops the int-or-string
// format, which kube-openapi's format registry checks as a string only; the oneOf
// next to it accepts integers and strings.
func closeObjects(s *spec.Schema) {
	if s == nil {
		return
	}
	if s.Format == "int-or-string" {
		s.Format = ""
	}
	preserve, _ := s.Extensions.GetBool("x-kubernetes-preserve-unknown-fields")
	if embedded, _ := s.Extensions.GetBool("x-kubernetes-embedded-resource"); embedded && len(s.Properties) > 0 {
		addObjectFields(s)
	}
	if len(s.Properties) > 0 && s.AdditionalProperties == nil && !preserve {
		s.AdditionalProperties = &spec.SchemaOrBool{Allows: false}
	}
	for name, p := range s.Properties {
		closeObjects(&p)
		s.Properties[name] = p
	}
	if s.Items != nil {
		closeObjects(s.Items.Schema)
		for i := range s.Items.Schemas {
			closeObjects(&s.Items.Schemas[i])
		}
	}
	if s.AdditionalProperties != nil {
		closeObjects(s.AdditionalProperties.Schema)
	}
	for _, list := range [][]spec.Schema{s.AllOf, s.AnyOf, s.OneOf} {
		for i := range list {
			closeObjects(&list[i])
		}
	}
	closeObjects(s.Not)
}

func minorNumber(minor string) int {
	_, n, _ := strings.Cut(minor, ".")
	i, _ := strconv.Atoi(n)
	return i
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// addObjectFields declares apiVersion, kind and metadata on the schema of a whole
// object where it leaves them out, as custom resource schemas may.
func addObjectFields(s *spec.Schema) {
	if s.Properties == nil {
		s.Properties = map[string]spec.Schema{}
	}
	for _, name := range []string{"apiVersion", "kind"} {
		if _, ok := s.Properties[name]; !ok {
			s.Properties[name] = *spec.StringProperty()
		}
	}
	if _, ok := s.Properties["metadata"]; !ok {
		s.Properties["metadata"] = *spec.RefSchema(refPrefix + objectMetaSchema)
	}
}

const objectMetaSchema = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
