package fleet

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// secretKey matches values keys that usually hold credentials.
var secretKey = regexp.MustCompile(`(?i)(password|passwd|secret|token|api[-_]?key|private[-_]?key|credentials?|client[-_]?secret|access[-_]?key)$`)

// notASecret matches values that name a secret rather than hold one: references to a
// Secret object or a variable, and placeholders.
var notASecret = regexp.MustCompile(`^(\$\{.*\}|\{\{.*\}\}|<.*>|changeme|REPLACE_?ME|none|null|true|false)$`)

// warnPlaintextSecrets warns about values under field of src that look like secrets
// written in plain text; they belong in the tenant's SOPS-encrypted secrets file.
// The warning names the key and never the value.
func (l *loader) warnPlaintextSecrets(src Source, field string, v map[string]any) {
	for _, k := range slices.Sorted(maps.Keys(v)) {
		at := join(field, k)
		switch value := v[k].(type) {
		case map[string]any:
			l.warnPlaintextSecrets(src, at, value)
		case Values:
			l.warnPlaintextSecrets(src, at, value)
		case string:
			if secretKey.MatchString(k) && len(value) >= 6 && !notASecret.MatchString(value) && !strings.HasSuffix(strings.ToLower(k), "secretname") {
				l.warnings = append(l.warnings, src.errorAt(at, "%q looks like a secret in plain text; move it to the tenant's %s file, encrypted with SOPS", k, SecretsSuffix))
			}
		}
	}
}

// warnValues checks every inline values map of the loaded objects.
func (l *loader) warnValues() {
	m := l.model
	if m.Fleet != nil {
		l.warnPlaintextSecrets(m.Fleet.Source, "spec.values", m.Fleet.Spec.Values)
	}
	for _, r := range m.Regions {
		l.warnPlaintextSecrets(r.Source, "spec.values", r.Spec.Values)
	}
	for _, a := range m.Apps {
		l.warnPlaintextSecrets(a.Source, "spec.values", a.Spec.Values)
	}
	for _, t := range m.Tenants {
		for i, ta := range t.Spec.Apps {
			at := fmt.Sprintf("spec.apps[%d]", i)
			l.warnPlaintextSecrets(t.Source, at+".values", ta.Values)
			for _, r := range slices.Sorted(maps.Keys(ta.RegionValues)) {
				l.warnPlaintextSecrets(t.Source, at+".regionValues."+r, ta.RegionValues[r])
			}
		}
	}
}
