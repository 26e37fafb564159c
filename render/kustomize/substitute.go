package kustomize

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/envsubst"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// SubstituteDisabledKey, set to "disabled" as a label or annotation of an object,
// leaves the object's ${...} references as they are, as in Flux.
const SubstituteDisabledKey = "kustomize.toolkit.fluxcd.io/substitute"

// varName is what a substitution variable may be called, as in Flux.
var varName = regexp.MustCompile(`^[_[:alpha:]][_[:alpha:][:digit:]]*$`)

// checkVars refuses variable names that ${...} could never reference.
func checkVars(kfile string, vars map[string]string) error {
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !varName.MatchString(name) {
			return &Error{File: kfile, Message: fmt.Sprintf("substitution variable %q is not a valid name; use letters, digits and underscores, not starting with a digit", name)}
		}
	}
	return nil
}

// substitute replaces ${var}, ${var:=default} and the other forms Flux supports in
// one object. A variable that is not set and has no default is an error naming the
// object and the variable. Errors never quote variable values, which may be secrets.
func substitute(kfile string, obj *unstructured.Unstructured, vars map[string]string) (*unstructured.Unstructured, error) {
	if obj.GetLabels()[SubstituteDisabledKey] == "disabled" || obj.GetAnnotations()[SubstituteDisabledKey] == "disabled" {
		return obj, nil
	}
	data, err := yaml.Marshal(obj.Object)
	if err != nil {
		return nil, failf(kfile, err, "%s: %v", objectName(obj), err)
	}
	// The mapping is asked for every variable; a default-giving form (${v:=d}) is
	// asked too and tolerates the miss, so the error is about the last one missed.
	var missing string
	out, err := envsubst.Eval(string(data), func(name string) (string, bool) {
		v, ok := vars[name]
		if !ok {
			missing = name
		}
		// As in Flux, a value is one line: a newline would break the YAML around it.
		return strings.ReplaceAll(v, "\n", ""), ok
	})
	if err != nil {
		if missing != "" {
			return nil, failf(kfile, err, "%s: variable %s is not set; set it, or give a default with ${%s:=value}", objectName(obj), missing, missing)
		}
		return nil, failf(kfile, err, "%s: bad variable substitution: %v; fix the ${...} expression, or write $${...} for a literal", objectName(obj), err)
	}
	// The parser's messages could quote a substituted value; leave them out.
	invalid := &Error{File: kfile, Message: fmt.Sprintf("%s: the object is no longer valid YAML after variable substitution; quote the ${...} references whose values hold YAML syntax", objectName(obj))}
	js, err := yaml.YAMLToJSON([]byte(out))
	if err != nil {
		return nil, invalid
	}
	result := &unstructured.Unstructured{}
	if err := result.UnmarshalJSON(js); err != nil {
		return nil, invalid
	}
	return result, nil
}

// objectName names an object the way Meridian's errors do: Kind/namespace/name, or
// Kind/name when it has no namespace.
func objectName(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return obj.GetKind() + "/" + ns + "/" + obj.GetName()
	}
	return obj.GetKind() + "/" + obj.GetName()
}
