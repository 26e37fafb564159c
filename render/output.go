package render

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/render/secrets"
)

// Redact returns copies of units that are safe to show people: every value of a
// Secret's data and stringData is replaced, and every decrypted value of the result
// (and its base64 form) is replaced wherever else it appears.
func (r *Result) Redact(units []*Unit) ([]*Unit, error) {
	redactor := secrets.NewRedactor(r.secretValues)
	out := make([]*Unit, len(units))
	for i, u := range units {
		c := *u
		all := u.All()
		redactedAll := make([]*unstructured.Unstructured, len(all))
		for j, o := range all {
			o = o.DeepCopy()
			if IsSecret(o) {
				for _, field := range []string{"data", "stringData"} {
					if m, ok := o.Object[field].(map[string]any); ok {
						for k := range m {
							m[k] = secrets.Redacted
						}
					}
				}
			}
			data, err := o.MarshalJSON()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ObjectRef(o), err)
			}
			redacted := &unstructured.Unstructured{}
			if err := redacted.UnmarshalJSON(redactor.Redact(data)); err != nil {
				return nil, fmt.Errorf("%s: redact: %w", ObjectRef(o), err)
			}
			redactedAll[j] = redacted
		}
		c.Objects = redactedAll[:len(u.Objects)]
		c.Hooks = slices.Clone(u.Hooks)
		for j := range c.Hooks {
			c.Hooks[j].Object = redactedAll[len(u.Objects)+j]
		}
		out[i] = &c
	}
	return out, nil
}

// EncodeYAML writes units as one YAML stream, each object a document preceded by a
// comment naming its unit. Keys are sorted, so equal objects give equal bytes.
func EncodeYAML(w io.Writer, units []*Unit) error {
	var buf bytes.Buffer
	for _, u := range units {
		for _, o := range u.All() {
			data, err := yaml.Marshal(o.Object)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", u.ID(), ObjectRef(o), err)
			}
			fmt.Fprintf(&buf, "---\n# %s: %s\n", u.ID(), ObjectRef(o))
			buf.Write(data)
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		buf.Reset()
	}
	return nil
}

// UnitFile is the path, relative to an output directory, of a unit's file:
// <tenant>/<region>/<app>.yaml, or <tenant>/<region>/_namespace.yaml for a namespace
// unit (app names cannot start with an underscore), and
// _addons/<region>/<addon>.yaml for an addon unit (nor can tenant names).
func UnitFile(u *Unit) string {
	if u.Addon != "" {
		return path.Join("_addons", u.Region, u.Addon+".yaml")
	}
	name := u.App
	if name == "" {
		name = "_namespace"
	}
	return path.Join(u.Tenant, u.Region, name+".yaml")
}
