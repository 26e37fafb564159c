package fleet

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"meridian.dev/meridian/internal/testenv/golden"
)

// TestSchemasAreUpToDate regenerates the JSON Schemas from types.go and fails when the
// published files under schema/ differ. Run `go test ./fleet -run TestSchemas -update`
// after changing a type.
func TestSchemasAreUpToDate(t *testing.T) {
	schemas, err := jsonSchemas(fieldDocs(t, "types.go"))
	if err != nil {
		t.Fatal(err)
	}
	if len(schemas) != len(kinds) {
		t.Fatalf("generated %d schemas, want one per kind (%d)", len(schemas), len(kinds))
	}
	for name, want := range schemas {
		golden.Check(t, filepath.Join("schema", name), want)
	}
}

// TestSchemaDescribesEveryField guards the docs: every field of every kind carries a
// doc comment, so editors can show it.
func TestSchemaDescribesEveryField(t *testing.T) {
	docs := fieldDocs(t, "types.go")
	var walk func(s map[string]any, at string)
	walk = func(s map[string]any, at string) {
		if props, ok := s["properties"].(map[string]any); ok {
			for key, p := range props {
				p := p.(map[string]any)
				if _, ok := p["description"]; !ok && key != "apiVersion" && key != "kind" {
					t.Errorf("%s.%s has no description; add a doc comment to its Go field", at, key)
				}
				walk(p, at+"."+key)
			}
		}
		if items, ok := s["items"].(map[string]any); ok {
			walk(items, at+"[]")
		}
		if add, ok := s["additionalProperties"].(map[string]any); ok {
			walk(add, at+".*")
		}
	}
	for _, k := range kinds {
		walk(schemaOf(k.typ, rules{}, docs), k.kind)
	}
}

// fieldDocs reads the doc comments of struct fields in a Go source file, keyed by
// "Type.Field".
func fieldDocs(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return true
		}
		for _, fl := range st.Fields.List {
			for _, name := range fl.Names {
				docs[ts.Name.Name+"."+name.Name] = strings.Join(strings.Fields(fl.Doc.Text()), " ")
			}
		}
		return true
	})
	return docs
}
