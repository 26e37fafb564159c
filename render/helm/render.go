package helm

import (
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// location says where a chart comes from, for messages.
type location struct {
	// appFile is the App file naming the chart, e.g. apps/portal/app.yaml.
	appFile string
	// dir is a local chart's directory in the repository, e.g. apps/portal/chart.
	dir string
	// remote describes a remote chart: "chart NAME VERSION from REPOSITORY".
	remote string
}

// chart names the chart as a whole.
func (l location) chart() string {
	if l.remote != "" {
		return l.appFile + ": " + l.remote
	}
	return l.dir
}

// at names a file of the chart from its path inside the chart ("" is the chart).
func (l location) at(name string) string {
	switch {
	case name == "":
		return l.chart()
	case l.remote != "":
		return l.appFile + ": " + l.remote + ": " + name
	default:
		return l.dir + "/" + name
	}
}

// template names a file that Helm calls by the chart's name and its path inside the
// chart, e.g. portal/templates/deployment.yaml or portal/charts/redis/crds/a.yaml.
func (l location) template(helmName string) string {
	_, rest, ok := strings.Cut(helmName, "/")
	if !ok {
		rest = helmName
	}
	return l.at(rest)
}

// render runs Helm's client-only install steps (those of helm template) on a loaded
// chart and parses what they produce.
func render(ch *chart.Chart, loc location, req Request) ([]*unstructured.Unstructured, error) {
	if ch.Metadata.Type == "library" {
		return nil, fmt.Errorf("%s: type is library, and a library chart renders nothing on its own; point %s at an application chart", loc.at("Chart.yaml"), loc.appFile)
	}
	kv := req.KubeVersion
	if kv == "" {
		kv = DefaultKubeVersion
	}
	kubeVersion, err := chartutil.ParseKubeVersion(kv)
	if err != nil {
		return nil, fmt.Errorf("%s: Kubernetes version %q: %w; give it as major.minor.patch, e.g. 1.37.2", loc.appFile, kv, err)
	}
	if c := ch.Metadata.KubeVersion; c != "" && !chartutil.IsCompatibleRange(c, kubeVersion.String()) {
		return nil, fmt.Errorf("%s: chart requires kubeVersion %s, which Kubernetes %s does not satisfy; pin a chart version made for this cluster", loc.at("Chart.yaml"), c, kubeVersion)
	}

	values := copyMap(req.Values)
	if err := chartutil.ProcessDependenciesWithMerge(ch, values); err != nil {
		return nil, fmt.Errorf("%s: dependencies: %w", loc.at("Chart.yaml"), err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kubeVersion
	caps.APIVersions = append(slices.Clone(chartutil.DefaultVersionSet), req.APIVersions...)
	top, err := chartutil.ToRenderValuesWithSchemaValidation(ch, values, chartutil.ReleaseOptions{
		Name:      req.ReleaseName,
		Namespace: req.Namespace,
		Revision:  1,
		IsInstall: true,
	}, caps, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc.chart(), err)
	}

	var e engine.Engine // no cluster client: lookup finds nothing; DNS lookups off
	files, err := e.Render(ch, top)
	if err != nil {
		return nil, templateError(loc, err)
	}

	var out objects
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		if err := out.add(loc.template(name), files[name]); err != nil {
			return nil, err
		}
	}
	for _, crd := range ch.CRDObjects() {
		if err := out.add(loc.template(crd.Filename), string(crd.File.Data)); err != nil {
			return nil, err
		}
	}
	return out.sorted()
}

// Helm's engine reports template errors in these shapes; the location is the template's
// name inside the chart, a line and maybe a column.
var (
	helmErrorAt   = regexp.MustCompile(`^(?:parse|execution) error (?:at|in) \(([^):]+)((?::\d+){0,2})\): (?s:(.*))$`)
	goTemplateErr = regexp.MustCompile(`^template: ([^:\s]+)((?::\d+){1,2}): (?:executing "[^"]*" )?(?s:(.*))$`)
)

// templateError restates a Helm engine error as "<chart file>:<line>:<column>: message",
// reading the position from the message: Helm's engine returns template errors as
// text only.
// where the chart file is its path in the repository (or, for a remote chart, the App
// file, the chart and the file's path in the chart).
func templateError(loc location, err error) error {
	msg := err.Error()
	for _, re := range []*regexp.Regexp{helmErrorAt, goTemplateErr} {
		if m := re.FindStringSubmatch(msg); m != nil {
			return fmt.Errorf("%s%s: %s", loc.template(m[1]), m[2], m[3])
		}
	}
	return fmt.Errorf("%s: %w", loc.chart(), err)
}

// copyMap deep-copies values so that rendering never touches the caller's, turning any
// map with string keys into map[string]any and any slice into []any: Helm recognises
// nested tables only as map[string]any.
func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v any) any {
	switch t := v.(type) {
	case nil, string, bool, int, int64, float64:
		return v
	case map[string]any:
		return copyMap(t)
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = copyValue(x)
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch {
	case rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String:
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			out[it.Key().String()] = copyValue(it.Value().Interface())
		}
		return out
	case rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() != reflect.Uint8:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = copyValue(rv.Index(i).Interface())
		}
		return out
	}
	return v
}
