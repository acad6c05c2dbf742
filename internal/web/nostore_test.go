package web

import (
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoStoreWrites: the web changes nothing by itself. Its code uses the
// store package's values (errors, policies, actions: what the admin
// service's requests and answers hold) but never one of its interfaces
// (a store to call) and no store backend: every change goes through
// admin.Do.
func TestNoStoreWrites(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := gotoken.NewFileSet()
	// The store's interfaces, read from its source.
	ifaces := map[string]bool{}
	storeFiles, _ := filepath.Glob("../../store/*.go")
	for _, f := range storeFiles {
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				if _, ok := ts.Type.(*ast.InterfaceType); ok {
					ifaces[ts.Name.Name] = true
				}
			}
			return true
		})
	}
	if !ifaces["Store"] {
		t.Fatalf("store.Store not found among the store's interfaces %v", ifaces)
	}
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
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "store" && ifaces[sel.Sel.Name] {
				t.Errorf("%s: store.%s: the web reaches the store only through the admin service", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}
