package fleet

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Source records where an object was read from, so that later stages (render, apply,
// DNS) can point their errors at the file and line a fleet author has to change.
type Source struct {
	// File is the object's path inside the repository, slash-separated.
	File string
	// lines maps field paths (spec.apps[0].name) to 1-based lines.
	lines map[string]int
}

// Line returns the line of a field path, or of its nearest enclosing field that has one,
// or 0 when nothing is known.
func (s Source) Line(field string) int {
	for field != "" {
		if l, ok := s.lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return s.lines[""]
}

// Position formats a field's location as file:line, or the file alone.
func (s Source) Position(field string) string {
	if l := s.Line(field); l > 0 {
		return fmt.Sprintf("%s:%d", s.File, l)
	}
	return s.File
}

// errorAt builds an Error for a field of this source.
func (s Source) errorAt(field, format string, args ...any) *Error {
	return &Error{File: s.File, Line: s.Line(field), Field: field, Message: fmt.Sprintf(format, args...)}
}

// decoder checks one YAML document against a Go type: unknown fields, duplicate keys,
// wrong scalar types, missing required fields and the schema rules of each field.
// It records the line of every field path it visits.
type decoder struct {
	src  Source
	errs ErrorList
	// visits counts nodes walked, aliases included, to stop alias bombs early.
	visits int
	// depth is how many mappings and lists enclose the node being walked.
	depth int
	// pathBytes adds up the length of every field path recorded.
	pathBytes int
	// stopped is set when the document broke a limit: the walk ends there and the
	// document is not decoded, since decoding it would cost what the limit protects.
	stopped bool
}

// The limits of one document, far above any real fleet file and far below what would
// exhaust memory or time: the parser itself only stops at 10,000 levels, and aliases
// let a small file stand for a huge or endless tree.
const (
	// maxNodeVisits bounds the nodes one document may expand to (aliases count each
	// time they are used): an alias bomb or an alias to its own ancestor stops here.
	maxNodeVisits = 250_000
	// MaxDepth bounds how deeply mappings and lists may nest in a fleet file.
	MaxDepth = 100
	// maxPathBytes bounds the field paths (spec.values.a.b[3]) recorded for one
	// document, which long keys over many nested nodes could otherwise make quadratic.
	maxPathBytes = 64 << 20
)

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 parse error into an Error with the line it names.
// yaml.v3 gives a syntax error's line only in its message, so it is read there.
func syntaxError(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Message: "not valid YAML: " + m[2]}
	}
	return &Error{File: file, Message: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// parseYAML parses data as exactly one YAML document.
func parseYAML(file string, data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Line: 1, Message: "file is empty; write a YAML document or delete the file"}
		}
		return nil, syntaxError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(file, err)
		}
		return nil, &Error{File: file, Line: extra.Line, Message: "more than one YAML document; put each object in a file of its own"}
	}
	root := doc.Content[0]
	if isNull(root) { // "~", "---" or an anchor alone: nothing to check, nothing to decode
		return nil, &Error{File: file, Line: min(root.Line, bytes.Count(data, []byte("\n"))+1), Message: "the document is null; write a YAML mapping, or delete the file"}
	}
	return root, nil
}

// decodeObject strictly decodes node into out (a pointer to one of the kinds) and
// returns where its fields are. Problems are appended to errs; the object is filled
// as far as it could be, so that references to it still resolve. visits is how many
// nodes the document expanded to; ok is false when it broke a limit of its size or
// shape, and out was then left as it was.
func decodeObject(file string, node *yaml.Node, out any, errs *ErrorList) (src Source, visits int, ok bool) {
	d := &decoder{src: Source{File: file, lines: map[string]int{}}}
	d.walk(node, reflect.TypeOf(out).Elem(), "", rules{})
	if d.stopped {
		*errs = append(*errs, d.errs...)
		return d.src, d.visits, false
	}
	if err := node.Decode(out); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			d.errs = append(d.errs, &Error{File: file, Line: node.Line, Message: err.Error()})
		} else if len(d.errs) == 0 {
			// The walk checks every type the fleet kinds use; this is a safety net
			// for a type it does not know.
			for _, m := range te.Errors {
				d.errs = append(d.errs, syntaxError(file, errors.New("yaml: "+m)))
			}
		}
	}
	*errs = append(*errs, d.errs...)
	return d.src, d.visits, true
}

// checkShape checks a document that is read as free-form data but not decoded here
// (a secrets file, decrypted later): the limits of every fleet file, mapping keys
// that are unique strings, no merge keys.
func checkShape(file string, node *yaml.Node) ErrorList {
	d := &decoder{src: Source{File: file, lines: map[string]int{}}}
	d.walk(node, reflect.TypeFor[any](), "", rules{})
	return d.errs
}

// decodeValues parses a values file: a YAML mapping of string keys.
func decodeValues(file string, data []byte) (Values, Source, ErrorList) {
	node, perr := parseYAML(file, data)
	if perr != nil {
		return nil, Source{File: file}, ErrorList{perr}
	}
	var v Values
	var errs ErrorList
	src, _, _ := decodeObject(file, node, &v, &errs)
	return v, src, errs
}

// stop records that the document broke a limit, once, and ends the walk.
func (d *decoder) stop(n *yaml.Node, path, format string, args ...any) {
	d.stopped = true
	d.errorf(n, shorten(path), format, args...)
}

// shorten keeps a field path short enough to print.
func shorten(path string) string {
	const max = 200
	if len(path) <= max {
		return path
	}
	return strings.ToValidUTF8(path[:max-len("...")], "") + "..."
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.src.File, Line: n.Line, Field: path, Message: fmt.Sprintf(format, args...)})
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// walk visits n, which should hold a value of type t at path.
func (d *decoder) walk(n *yaml.Node, t reflect.Type, path string, r rules) {
	if d.stopped {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if d.visits++; d.visits > maxNodeVisits {
		d.stop(n, path, "document expands to more than %d nodes (aliases included); write it out plainly", maxNodeVisits)
		return
	}
	if d.pathBytes += len(path); d.pathBytes > maxPathBytes {
		d.stop(n, "", "document's field paths add up to more than %d bytes (long keys over many nested values); shorten the keys or flatten the values", maxPathBytes)
		return
	}
	if _, seen := d.src.lines[path]; !seen {
		d.src.lines[path] = n.Line
	}
	if isNull(n) {
		return
	}
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		if d.depth >= MaxDepth {
			d.stop(n, path, "nested more than %d levels deep; flatten it", MaxDepth)
			return
		}
		d.depth++
		defer func() { d.depth-- }()
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) { // decoded from one scalar
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a string, got %s", describe(n))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.walkStruct(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, got %s", describe(n))
			return
		}
		for i, item := range n.Content {
			at := fmt.Sprintf("%s[%d]", path, i)
			if isNull(item) || (item.Kind == yaml.AliasNode && isNull(item.Alias)) {
				// yaml.v3 would drop the item or decode it as an empty value, silently
				d.errorf(item, at, "list item is empty; fill it in or remove its -")
				continue
			}
			d.walk(item, t.Elem(), at, r)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "expected a mapping, got %s", describe(n))
			return
		}
		d.eachKey(n, path, func(key string, value *yaml.Node) {
			d.walk(value, t.Elem(), join(path, key), rules{})
		})
	case reflect.Interface:
		d.walkAny(n, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a string, got %s", describe(n))
			return
		}
		d.checkRules(n, path, r)
	case reflect.Int, reflect.Int32, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.errorf(n, path, "expected an integer, got %s", describe(n))
			return
		}
		d.checkRules(n, path, r)
	case reflect.Float32, reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&f) != nil {
			d.errorf(n, path, "expected a number, got %s", describe(n))
			return
		}
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0):
			d.errorf(n, path, "%s is not a finite number", n.Value)
		case r.positive && f <= 0:
			d.errorf(n, path, "%s is too small; use a number above 0", n.Value)
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.errorf(n, path, "expected true or false, got %s", describe(n))
		}
	}
}

func (d *decoder) walkStruct(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(t)
	present := map[string]bool{}
	d.eachKey(n, path, func(key string, value *yaml.Node) {
		i := slices.IndexFunc(fields, func(f field) bool { return f.key == key })
		if i < 0 {
			d.errorf(value, join(path, key), "unknown field; %s", suggest(key, fields))
			return
		}
		if !isNull(value) {
			present[key] = true
		}
		d.walk(value, fields[i].typ, join(path, key), fields[i].rules)
	})
	if d.stopped { // the fields after the limit were not looked at
		return
	}
	for _, f := range fields {
		if f.rules.required && !present[f.key] {
			d.errs = append(d.errs, d.src.errorAt(path, "required field %q is missing; add it", f.key))
			d.errs[len(d.errs)-1].Field = join(path, f.key)
		}
	}
}

// walkAny checks free-form values: mapping keys must be unique strings.
func (d *decoder) walkAny(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		d.eachKey(n, path, func(key string, value *yaml.Node) {
			d.walk(value, reflect.TypeFor[any](), join(path, key), rules{})
		})
	case yaml.SequenceNode:
		for i, item := range n.Content {
			d.walk(item, reflect.TypeFor[any](), fmt.Sprintf("%s[%d]", path, i), rules{})
		}
	case yaml.ScalarNode:
		var f float64
		if n.ShortTag() == "!!float" && n.Decode(&f) == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			d.errorf(n, path, "%s is not a number a chart can be given (JSON, which charts and Kubernetes objects are made of, has no NaN or infinity); quote it if you mean the string", n.Value)
		}
	}
}

// eachKey calls fn for every key of mapping n, reporting duplicate and non-string keys.
func (d *decoder) eachKey(n *yaml.Node, path string, fn func(key string, value *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || (k.ShortTag() != "!!str" && k.ShortTag() != "!!merge") {
			d.errorf(k, path, "mapping key %s is not a string; quote it", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.errorf(k, path, "YAML merge keys (<<) are not supported; write the keys out")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, join(path, k.Value), "duplicate key; it is already set on line %d, keep one of them", first)
			continue
		}
		seen[k.Value] = k.Line
		d.src.lines[join(path, k.Value)] = k.Line // a field's line is its key's line
		fn(k.Value, v)
	}
}

func (d *decoder) checkRules(n *yaml.Node, path string, r rules) {
	v := n.Value
	if len(r.enum) > 0 && !slices.Contains(r.enum, v) {
		d.errorf(n, path, "%q is not allowed; use one of %s", v, strings.Join(r.enum, ", "))
	}
	if r.dns1123 {
		if problems := validation.IsDNS1123Label(v); len(problems) > 0 {
			d.errorf(n, path, "%q is not a DNS-1123 label: %s", v, problems[0])
		}
	}
	if r.min != nil || r.max != nil {
		i, err := strconv.Atoi(v)
		switch {
		case err != nil:
			d.errorf(n, path, "%q is not an integer", v)
		case r.min != nil && r.max != nil && (i < *r.min || i > *r.max):
			d.errorf(n, path, "%d is out of range; use %d to %d", i, *r.min, *r.max)
		case r.min != nil && i < *r.min:
			d.errorf(n, path, "%d is too small; use %d or more", i, *r.min)
		case r.max != nil && i > *r.max:
			d.errorf(n, path, "%d is too large; use %d or less", i, *r.max)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names a node's kind for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int":
		return "the integer " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	case "!!float":
		return "the number " + n.Value
	}
	return strconv.Quote(n.Value)
}

// suggest proposes the known key closest to an unknown one.
func suggest(key string, fields []field) string {
	best, bestDist := "", len(key)/2+2
	var known []string
	for _, f := range fields {
		known = append(known, f.key)
		if dist := editDistance(strings.ToLower(key), strings.ToLower(f.key)); dist < bestDist {
			best, bestDist = f.key, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "remove it; known fields are " + strings.Join(known, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Decode strictly decodes data, one YAML document read from file, into out (a pointer
// to a struct with yaml tags and optional schema tags), with the same rules as fleet
// files: unknown fields, duplicate keys, wrong types and missing required fields are
// errors, every one reported with its line in the returned ErrorList. Meridian's own
// configuration file is read this way.
func Decode(file string, data []byte, out any) error {
	node, perr := parseYAML(file, data)
	if perr != nil {
		return ErrorList{perr}
	}
	var errs ErrorList
	decodeObject(file, node, out, &errs)
	if len(errs) > 0 {
		errs = errs.firstPerField()
		errs.sort()
		return errs
	}
	return nil
}
