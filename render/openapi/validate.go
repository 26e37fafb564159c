package openapi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/errors"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
)

// Problem is one way an object does not fit what its region's Kubernetes serves.
type Problem struct {
	// Field is the path of the offending field, such as spec.replicas; empty when the
	// problem is the object as a whole.
	Field string
	// Message says what is wrong and how to fix it. It never holds a field's value,
	// so that Secrets are never printed.
	Message string
	// Warning marks a problem that does not make the object invalid, such as a custom
	// resource with no schema to check it against.
	Warning bool
}

// Validator checks objects against one Kubernetes version's schemas and the
// CustomResourceDefinitions it was given. It is not safe for concurrent use.
type Validator struct {
	schemas *Schemas
	// crds are the schemas of custom resources by group/version/kind, and crdScope
	// whether each group/kind is namespaced.
	crds     map[string]*spec.Schema
	crdScope map[schema.GroupKind]bool
	opts     []validate.Option
}

// NewValidator returns a Validator for these schemas and the custom resources whose
// CustomResourceDefinitions are in crds (other objects are ignored). A CRD version
// without an openAPIV3Schema leaves its resources unchecked, with a warning.
func (s *Schemas) NewValidator(crds []*unstructured.Unstructured) *Validator {
	v := &Validator{schemas: s, crds: map[string]*spec.Schema{}, crdScope: map[schema.GroupKind]bool{}}
	v.opts = []validate.Option{func(o *validate.SchemaValidatorOptions) {
		o.NewValidatorForField = func(_ string, sch *spec.Schema, _ any, path string, _ strfmt.Registry, _ ...validate.Option) validate.ValueValidator {
			return v.newSchemaValidator(sch, path)
		}
		o.NewValidatorForIndex = func(_ int, sch *spec.Schema, _ any, path string, _ strfmt.Registry, _ ...validate.Option) validate.ValueValidator {
			return v.newSchemaValidator(sch, path)
		}
	}}
	for _, crd := range crds {
		if crd.GroupVersionKind().GroupKind() != (schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}) {
			continue
		}
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(crd.Object, "spec", "scope")
		v.crdScope[schema.GroupKind{Group: group, Kind: kind}] = scope != "Cluster"
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		for _, item := range versions {
			version, _ := item.(map[string]any)
			name, _ := version["name"].(string)
			if served, ok := version["served"].(bool); ok && !served {
				continue
			}
			key := gvkKey(group, name, kind)
			v.crds[key] = nil // served, schema unknown until read below
			raw, ok, _ := unstructured.NestedFieldNoCopy(version, "schema", "openAPIV3Schema")
			if !ok {
				continue
			}
			data, err := json.Marshal(raw)
			if err != nil {
				continue
			}
			sch := new(spec.Schema)
			if err := json.Unmarshal(data, sch); err != nil {
				continue // the CRD's own schema check reports it
			}
			addObjectFields(sch)
			closeObjects(sch)
			v.crds[key] = sch
		}
	}
	return v
}

// Namespaced reports whether objects of a kind live in a namespace, and whether the
// kind is known at all, as a built-in kind or from a CustomResourceDefinition.
func (v *Validator) Namespaced(gvk schema.GroupVersionKind) (namespaced, known bool) {
	if k, ok := v.schemas.kinds[gvkKey(gvk.Group, gvk.Version, gvk.Kind)]; ok {
		return k.Namespaced, true
	}
	namespaced, known = v.crdScope[gvk.GroupKind()]
	return namespaced, known
}

// Validate checks one object: its apiVersion and kind are served by the Kubernetes
// version (or by a CustomResourceDefinition the Validator was given), and its fields
// conform to the kind's schema: no unknown fields, values of the right type and
// format, required fields present, enumerations respected. Problems are sorted by
// field.
func (v *Validator) Validate(u *unstructured.Unstructured) (problems []Problem) {
	gvk := u.GroupVersionKind()
	defer func() {
		// kube-openapi panics on a schema it cannot use, such as a CRD's with $ref,
		// which kube-apiserver refuses too.
		if r := recover(); r != nil {
			problems = []Problem{{Message: fmt.Sprintf("cannot be checked: the schema of %s %s is not usable (%v); fix the CustomResourceDefinition", gvk.GroupVersion(), gvk.Kind, r)}}
		}
	}()
	key := gvkKey(gvk.Group, gvk.Version, gvk.Kind)
	var root *spec.Schema
	if k, ok := v.schemas.kinds[key]; ok {
		root = v.schemas.defs[k.Schema]
	} else if sch, ok := v.crds[key]; ok {
		if sch == nil {
			return []Problem{{Warning: true, Message: fmt.Sprintf("the CustomResourceDefinition of %s %s has no openAPIV3Schema for this version; the object is not checked", gvk.GroupVersion(), gvk.Kind)}}
		}
		root = sch
	} else {
		return v.unknownKind(gvk)
	}
	if root == nil {
		return nil
	}
	res := v.newSchemaValidator(root, "").Validate(withoutNulls(u.Object))
	for _, err := range res.Errors {
		problems = append(problems, v.problem(err, gvk))
	}
	slices.SortFunc(problems, func(a, b Problem) int {
		return cmp.Or(strings.Compare(a.Field, b.Field), strings.Compare(a.Message, b.Message))
	})
	return slices.Compact(problems)
}

// unknownKind explains a kind that neither the schemas nor a CRD serve: an error
// for a built-in group (a removed or misspelt version or kind), a warning for a
// custom resource whose definition is not in the fleet.
func (v *Validator) unknownKind(gvk schema.GroupVersionKind) []Problem {
	var versions []string
	builtinGroup := false
	for key := range v.schemas.kinds {
		group, version, kind := splitGVK(key)
		if group != gvk.Group {
			continue
		}
		builtinGroup = true
		if kind == gvk.Kind {
			versions = append(versions, schema.GroupVersion{Group: group, Version: version}.String())
		}
	}
	for key := range v.crds {
		group, version, kind := splitGVK(key)
		if group == gvk.Group && kind == gvk.Kind {
			versions = append(versions, schema.GroupVersion{Group: group, Version: version}.String())
		}
	}
	slices.Sort(versions)
	switch {
	case len(versions) > 0:
		return []Problem{{Field: "apiVersion", Message: fmt.Sprintf("Kubernetes %s does not serve %s %s; use apiVersion %s", v.schemas.Minor, gvk.GroupVersion(), gvk.Kind, strings.Join(versions, " or "))}}
	case builtinGroup || gvk.Group == "":
		return []Problem{{Field: "kind", Message: fmt.Sprintf("Kubernetes %s has no kind %s in %s; fix the kind or the apiVersion", v.schemas.Minor, gvk.Kind, gvk.GroupVersion())}}
	}
	return []Problem{{Warning: true, Message: fmt.Sprintf("no schema for %s %s: its CustomResourceDefinition is not rendered in the fleet, so the object is not checked", gvk.GroupVersion(), gvk.Kind)}}
}

// newSchemaValidator returns kube-openapi's validator for sch at path, following
// $ref (which kube-openapi leaves to its caller) to the named schema.
func (v *Validator) newSchemaValidator(sch *spec.Schema, path string) fieldValidator {
	sch = v.resolve(sch)
	return fieldValidator{SchemaValidator: validate.NewSchemaValidator(sch, nil, path, strfmt.Default, v.opts...), schema: sch}
}

// fieldValidator is kube-openapi's validator of the value at one path. The errors
// about that value come back as *fieldError, with the schema and the value they
// judged: kube-openapi's errors hold what the value failed to meet (a type, a
// format, a bound) only in their text.
type fieldValidator struct {
	*validate.SchemaValidator
	schema *spec.Schema
}

// Validate validates data and keeps, with each error about it, schema and data.
// Errors about the fields below it were kept by their own validators.
func (f fieldValidator) Validate(data any) *validate.Result {
	res := f.SchemaValidator.Validate(data)
	for i, err := range res.Errors {
		if e, ok := err.(*errors.Validation); ok && e.Name == f.Path {
			res.Errors[i] = &fieldError{Validation: e, schema: f.schema, value: data}
		}
	}
	return res
}

// fieldError is an error of kube-openapi's about one value, with the schema it was
// checked against and the value itself, which no message may repeat.
type fieldError struct {
	*errors.Validation
	schema *spec.Schema
	value  any
}

// resolve follows $ref to the schema it names; a dangling reference checks nothing.
func (v *Validator) resolve(sch *spec.Schema) *spec.Schema {
	for seen := 0; sch.Ref.String() != "" && seen < 32; seen++ {
		target, ok := v.schemas.defs[strings.TrimPrefix(sch.Ref.String(), refPrefix)]
		if !ok {
			return &spec.Schema{}
		}
		sch = target
	}
	return sch
}

// closest returns the field most like key, if one is close enough to be a typo.
func closest(key string, fields []string) string {
	best, bestDist := "", len(key)/3+2
	for _, f := range fields {
		if strings.EqualFold(f, key) {
			return f
		}
		if d := editDistance(key, f); d < bestDist {
			best, bestDist = f, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// problem turns one of kube-openapi's errors into a Problem without the value it
// found, so that no Secret value is ever repeated. What the value failed to meet
// comes from the error's fields and the schema it was checked against.
func (v *Validator) problem(err error, gvk schema.GroupVersionKind) Problem {
	var sch *spec.Schema
	var value any
	e, ok := err.(*errors.Validation)
	if f, isField := err.(*fieldError); isField {
		e, ok, sch, value = f.Validation, true, f.schema, f.value
	}
	if !ok {
		return Problem{Message: err.Error()}
	}
	where := fmt.Sprintf("Kubernetes %s %s %s", v.schemas.Minor, gvk.GroupVersion(), gvk.Kind)
	switch e.Code() {
	case errors.UnallowedPropertyCode:
		key, _ := e.Value.(string)
		fix := "remove it or fix its name"
		if sch != nil {
			if best := closest(key, slices.Sorted(maps.Keys(sch.Properties))); best != "" {
				fix = fmt.Sprintf("did you mean %q?", best)
			}
		}
		return Problem{Field: join(e.Name, key), Message: fmt.Sprintf("unknown field (%s has no such field); %s", where, fix)}
	case errors.RequiredFailCode:
		return Problem{Field: e.Name, Message: fmt.Sprintf("required field is missing (%s); set it", where)}
	case errors.InvalidTypeCode:
		return Problem{Field: e.Name, Message: wrongType(sch, value, where)}
	}
	if what := unmet(e, sch); what != "" {
		return Problem{Field: e.Name, Message: what + " (" + where + "); fix the value"}
	}
	// Anything else in kube-openapi's own words, which repeat no value but a wrong
	// type's, handled above.
	return Problem{Field: e.Name, Message: e.Error() + " (" + where + "); fix the value"}
}

// wrongType explains a value of the wrong type or format for the schema sch it was
// checked against (nil when not known).
func wrongType(sch *spec.Schema, value any, where string) string {
	name := ""
	if sch != nil {
		name = strings.Join(sch.Type, ",")
		// A string where the schema takes one fails only its format.
		if _, isString := value.(string); name == "" || (isString && sch.Format != "" && sch.Type.Contains("string")) {
			name = sch.Format
		}
	}
	switch name {
	case "":
		return fmt.Sprintf("is of the wrong type or format (%s); fix the value", where)
	case "string", "integer", "number", "boolean", "object", "array":
		return fmt.Sprintf("must be of type %s (%s); fix the value (quote numbers meant as strings)", name, where)
	case "byte":
		return fmt.Sprintf("is not base64, which format byte requires (%s); encode the value (in a Secret, or move it to stringData)", where)
	}
	return fmt.Sprintf("is not in format %s (%s); fix the value", name, where)
}

// unmet says which limit of the schema a value broke, in kube-openapi's words,
// from the error's fields and the schema sch (nil when not known); "" when
// neither says.
func unmet(e *errors.Validation, sch *spec.Schema) string {
	switch e.Code() {
	case errors.EnumFailCode:
		return fmt.Sprintf("should be one of %v", e.Values)
	case errors.TooLongFailCode:
		return fmt.Sprintf("should be at most %v chars long", e.Valid)
	case errors.TooShortFailCode:
		return fmt.Sprintf("should be at least %v chars long", e.Valid)
	case errors.MaxItemsFailCode:
		return fmt.Sprintf("should have at most %v items", e.Valid)
	case errors.MinItemsFailCode:
		return fmt.Sprintf("should have at least %v items", e.Valid)
	case errors.TooManyPropertiesCode:
		return fmt.Sprintf("should have at most %v properties", e.Valid)
	case errors.TooFewPropertiesCode:
		return fmt.Sprintf("should have at least %v properties", e.Valid)
	case errors.UniqueFailCode:
		return "shouldn't contain duplicates"
	case errors.NoAdditionalItemsCode:
		return "can't have additional items"
	}
	if sch == nil {
		return ""
	}
	switch e.Code() {
	case errors.MinFailCode:
		if sch.Minimum != nil && sch.ExclusiveMinimum {
			return "should be greater than " + number(*sch.Minimum)
		} else if sch.Minimum != nil {
			return "should be greater than or equal to " + number(*sch.Minimum)
		}
	case errors.MaxFailCode:
		if sch.Maximum != nil && sch.ExclusiveMaximum {
			return "should be less than " + number(*sch.Maximum)
		} else if sch.Maximum != nil {
			return "should be less than or equal to " + number(*sch.Maximum)
		}
	case errors.MultipleOfFailCode:
		if sch.MultipleOf != nil {
			return "should be a multiple of " + number(*sch.MultipleOf)
		}
	case errors.PatternFailCode:
		if sch.Pattern != "" {
			return fmt.Sprintf("should match '%s'", sch.Pattern)
		}
	}
	return ""
}

// number writes a schema's bound as it was most likely written: 1, 0.5, 1000000.
func number(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// withoutNulls copies an object without its null values: kube-apiserver treats a
// null field of a built-in kind as unset, and templates often leave them.
func withoutNulls(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			if val != nil {
				out[k] = withoutNulls(val)
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = withoutNulls(val)
		}
		return out
	}
	return v
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// splitGVK undoes gvkKey.
func splitGVK(key string) (group, version, kind string) {
	parts := strings.Split(key, "/")
	if len(parts) == 2 {
		return "", parts[0], parts[1]
	}
	return parts[0], parts[1], parts[2]
}
