package fleet

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a fleet repository, located as precisely as the loader can:
// the file, the line, and the field path inside the file.
type Error struct {
	// File is the path of the file inside the repository, slash-separated.
	File string `json:"file"`
	// Line is the 1-based line in File, or 0 when the problem is the file as a whole.
	Line int `json:"line,omitempty"`
	// Field is the path of the offending field, such as spec.apps[1].name.
	Field string `json:"field,omitempty"`
	// Message says what is wrong and how to fix it.
	Message string `json:"message"`
}

// Error formats the problem the way compilers do: file:line: field: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// ErrorList is every problem found in one load, sorted by file and line.
type ErrorList []*Error

// Error lists the problems one per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sort orders the list by file, line and message so output is stable.
func (l ErrorList) sort() {
	slices.SortStableFunc(l, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Field, b.Field), cmp.Compare(a.Message, b.Message))
	})
}

// firstPerField keeps the first error reported for each field of a file: a field the
// decoder already refused (say, a duplicate key) is not reported again by the checks
// that run on what was decoded.
func (l ErrorList) firstPerField() ErrorList {
	type key struct{ file, field string }
	seen := map[key]bool{}
	var out ErrorList
	for _, e := range l {
		k := key{e.File, e.Field}
		if e.Field != "" && seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}
