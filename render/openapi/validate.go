package openapi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
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
		problems = append(problems, v.problem(err, gvk, root))
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

// newSchemaValidator returns kube-openapi's validator for sch, following $ref
// (which kube-openapi leaves to its caller) to the named schema.
func (v *Validator) newSchemaValidator(sch *spec.Schema, path string) *validate.SchemaValidator {
	return validate.NewSchemaValidator(v.resolve(sch), nil, path, strfmt.Default, v.opts...)
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

// fieldsAt returns the fields the schema declares for the object at path, such as
// spec.template.spec.containers[0], or none when path leads nowhere.
func (v *Validator) fieldsAt(root *spec.Schema, path string) []string {
	s := v.resolve(root)
	for _, seg := range strings.Split(path, ".") {
		if seg == "" {
			continue
		}
		name, indexes, _ := strings.Cut(seg, "[")
		p, ok := s.Properties[name]
		if !ok {
			return nil
		}
		s = v.resolve(&p)
		for range strings.Count(indexes, "]") {
			if s.Items == nil || s.Items.Schema == nil {
				return nil
			}
			s = v.resolve(s.Items.Schema)
		}
	}
	return slices.Sorted(maps.Keys(s.Properties))
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
// found, so that no Secret value is ever repeated.
func (v *Validator) problem(err error, gvk schema.GroupVersionKind, root *spec.Schema) Problem {
	e, ok := err.(*errors.Validation)
	if !ok {
		return Problem{Message: err.Error()}
	}
	where := fmt.Sprintf("Kubernetes %s %s %s", v.schemas.Minor, gvk.GroupVersion(), gvk.Kind)
	switch e.Code() {
	case errors.UnallowedPropertyCode:
		key, _ := e.Value.(string)
		fix := "remove it or fix its name"
		if best := closest(key, v.fieldsAt(root, e.Name)); best != "" {
			fix = fmt.Sprintf("did you mean %q?", best)
		}
		return Problem{Field: join(e.Name, key), Message: fmt.Sprintf("unknown field (%s has no such field); %s", where, fix)}
	case errors.RequiredFailCode:
		return Problem{Field: e.Name, Message: fmt.Sprintf("required field is missing (%s); set it", where)}
	case errors.InvalidTypeCode:
		typeName := fmt.Sprint(e.Value)
		if msg := e.Error(); strings.Contains(msg, " must be of type ") {
			typeName, _, _ = strings.Cut(strings.SplitN(msg, " must be of type ", 2)[1], ":")
		}
		switch typeName {
		case "string", "integer", "number", "boolean", "object", "array":
			return Problem{Field: e.Name, Message: fmt.Sprintf("must be of type %s (%s); fix the value (quote numbers meant as strings)", typeName, where)}
		case "byte":
			return Problem{Field: e.Name, Message: fmt.Sprintf("is not base64, which format byte requires (%s); encode the value (in a Secret, or move it to stringData)", where)}
		}
		return Problem{Field: e.Name, Message: fmt.Sprintf("is not in format %s (%s); fix the value", typeName, where)}
	}
	msg := strings.TrimPrefix(strings.TrimPrefix(e.Error(), e.Name), " in body")
	return Problem{Field: e.Name, Message: strings.TrimSpace(msg) + " (" + where + "); fix the value"}
}

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
