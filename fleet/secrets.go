package fleet

import (
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
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
	for _, a := range m.Addons {
		l.warnPlaintextSecrets(a.Source, "spec.values", a.Spec.Values)
		for _, r := range slices.Sorted(maps.Keys(a.Spec.RegionValues)) {
			l.warnPlaintextSecrets(a.Source, "spec.regionValues."+r, a.Spec.RegionValues[r])
		}
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

// SOPSConfigFile is SOPS's own configuration file (its creation rules), which is
// named like a SOPS file but holds no secrets.
const SOPSConfigFile = ".sops.yaml"

// CheckSOPSFiles checks that every file in the repository named *.sops.yaml or
// *.sops.yml, wherever it is, is encrypted: it has a sops section with a MAC, and
// every value its own sops metadata says SOPS encrypts (unencrypted_suffix,
// encrypted_suffix, unencrypted_regex, encrypted_regex and their comment forms) is
// an ENC[...] value. It reads the files' structure and never reports a value.
// Directories named .git are skipped, and so is SOPSConfigFile.
func CheckSOPSFiles(fsys fs.FS) ErrorList {
	l := &loader{fsys: fsys, limits: defaultLimits, model: &Model{}}
	err := fs.WalkDir(fsys, ".", func(file string, d fs.DirEntry, err error) error {
		if err != nil {
			l.add(&Error{File: file, Message: "cannot read: " + unwrapPathError(err)})
			return nil
		}
		if d.IsDir() && d.Name() == ".git" {
			return fs.SkipDir
		}
		name := d.Name()
		if d.IsDir() || name == SOPSConfigFile || !(strings.HasSuffix(name, ".sops.yaml") || strings.HasSuffix(name, ".sops.yml")) {
			return nil
		}
		l.checkSOPSFile(file)
		return nil
	})
	if err != nil {
		l.add(&Error{File: ".", Message: "cannot read: " + unwrapPathError(err)})
	}
	l.errs.sort()
	return l.errs
}

// notEncrypted is the error for a SOPS file without a sops section.
func notEncrypted(file string) *Error {
	return &Error{File: file, Line: 1, Message: "is not encrypted (no sops section); encrypt it with `sops --encrypt --in-place " + file + "` before committing, and rotate any secret it exposed"}
}

// sopsRules are the parts of a file's sops metadata that say which values SOPS
// encrypted; at most one of them is set.
type sopsRules struct {
	unencryptedSuffix, encryptedSuffix   string
	unencryptedRegex, encryptedRegex     *regexp.Regexp
	unencryptedComment, encryptedComment *regexp.Regexp
}

// checkSOPSFile checks one SOPS file; see CheckSOPSFiles.
func (l *loader) checkSOPSFile(file string) {
	node, ok := l.readChecked(file)
	if !ok {
		return
	}
	if node.Kind != yaml.MappingNode {
		l.add(&Error{File: file, Line: node.Line, Message: "expected a mapping with a sops section; encrypt the file with `sops --encrypt --in-place " + file + "`"})
		return
	}
	var meta, metaKey *yaml.Node
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == "sops" {
			metaKey, meta = node.Content[i], node.Content[i+1]
		}
	}
	if meta == nil {
		l.add(notEncrypted(file))
		return
	}
	rules, problem := readSOPSRules(meta)
	if problem != "" {
		l.add(&Error{File: file, Line: metaKey.Line, Field: "sops", Message: problem + "; the file was not written by `sops --encrypt`: encrypt it again, and rotate any secret it exposed"})
		return
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		if k.Value != "sops" {
			plain, encrypted := rules.matches(k)
			l.checkEncrypted(file, k.Value, v, rules, sopsPath{plain: plain, encrypted: encrypted})
		}
	}
}

// readSOPSRules reads the sops section, or says what is wrong with it.
func readSOPSRules(meta *yaml.Node) (sopsRules, string) {
	var r sopsRules
	if meta.Kind != yaml.MappingNode {
		return r, "the sops section is not a mapping"
	}
	fields := map[string]string{}
	for i := 0; i+1 < len(meta.Content); i += 2 {
		if v := meta.Content[i+1]; v.Kind == yaml.ScalarNode {
			fields[meta.Content[i].Value] = v.Value
		} else {
			fields[meta.Content[i].Value] = "(set)"
		}
	}
	if !strings.HasPrefix(fields["mac"], "ENC[") {
		return r, "the sops section has no mac"
	}
	if fields["version"] == "" {
		return r, "the sops section has no version"
	}
	r.unencryptedSuffix, r.encryptedSuffix = fields["unencrypted_suffix"], fields["encrypted_suffix"]
	for _, re := range []struct {
		key string
		out **regexp.Regexp
	}{
		{"unencrypted_regex", &r.unencryptedRegex}, {"encrypted_regex", &r.encryptedRegex},
		{"unencrypted_comment_regex", &r.unencryptedComment}, {"encrypted_comment_regex", &r.encryptedComment},
	} {
		if s, ok := fields[re.key]; ok {
			compiled, err := regexp.Compile(s)
			if err != nil {
				return r, fmt.Sprintf("sops.%s is not a regular expression", re.key)
			}
			*re.out = compiled
		}
	}
	return r, ""
}

// matches says whether a key matches the file's rules for plain-text keys and for
// encrypted keys. SOPS decides along the path: a value stays in plain text when a
// key on its path matches an unencrypted rule, or when an encrypted rule is set and
// no key on its path matches it.
func (r sopsRules) matches(key *yaml.Node) (plain, encrypted bool) {
	k := key.Value
	comment := key.HeadComment + "\n" + key.LineComment
	plain = r.unencryptedSuffix != "" && strings.HasSuffix(k, r.unencryptedSuffix) ||
		r.unencryptedRegex != nil && r.unencryptedRegex.MatchString(k) ||
		r.unencryptedComment != nil && r.unencryptedComment.MatchString(comment)
	encrypted = r.encryptedSuffix != "" && strings.HasSuffix(k, r.encryptedSuffix) ||
		r.encryptedRegex != nil && r.encryptedRegex.MatchString(k) ||
		r.encryptedComment != nil && r.encryptedComment.MatchString(comment)
	return plain, encrypted
}

// selective reports that only the values of matching keys are encrypted.
func (r sopsRules) selective() bool {
	return r.encryptedSuffix != "" || r.encryptedRegex != nil || r.encryptedComment != nil
}

// sopsPath is what the keys on the way to a value matched.
type sopsPath struct{ plain, encrypted bool }

// checkEncrypted reports every value under n, at field, that SOPS would have
// encrypted but is in plain text.
func (l *loader) checkEncrypted(file, field string, n *yaml.Node, r sopsRules, p sopsPath) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			plain, encrypted := r.matches(k)
			l.checkEncrypted(file, join(field, k.Value), n.Content[i+1], r, sopsPath{plain: p.plain || plain, encrypted: p.encrypted || encrypted})
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			l.checkEncrypted(file, fmt.Sprintf("%s[%d]", field, i), item, r, p)
		}
	case yaml.ScalarNode:
		shouldBe := !p.plain && (p.encrypted || !r.selective())
		if shouldBe && !isNull(n) && n.Value != "" && !(strings.HasPrefix(n.Value, "ENC[") && strings.HasSuffix(n.Value, "]")) {
			l.add(&Error{File: file, Line: n.Line, Field: field, Message: "value is in plain text, but the file's sops metadata says SOPS encrypts it; encrypt the file again with `sops --encrypt --in-place " + file + "` (after `sops --decrypt --in-place` if the rest is encrypted), and rotate the secret"})
		}
	}
}
