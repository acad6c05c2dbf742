package web

import (
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoStoreWrites: the web changes nothing by itself. Its code reaches
// the store package only for the sentinel errors and types the admin
// service answers with, and no store backend at all: every change goes
// through admin.Do.
func TestNoStoreWrites(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"ErrInvalid": true, "ErrNoSuchAccount": true, "ErrNoSuchDomain": true, "ErrExists": true,
		"ErrNoSuchMessage": true, "QuotaError": true, "SpamAction": true}
	fset := gotoken.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if strings.HasPrefix(p, "yubin/store/") || p == "yubin/internal/storage" || strings.Contains(p, "bbolt") || strings.Contains(p, "pgx") {
				t.Errorf("%s imports %s", f, p)
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "store" && !allowed[sel.Sel.Name] {
				t.Errorf("%s: store.%s: the web reaches the store only through the admin service", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}
