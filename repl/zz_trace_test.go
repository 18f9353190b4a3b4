package repl_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

func TestZZTrace(t *testing.T) {
	repl.SetTrace(func(format string, args ...any) { fmt.Printf("  "+format+"\n", args...) })
	defer repl.SetTrace(nil)
	replicaIDs(t, 1, 2, 3, 4)
	t0 := recent().Add(-time.Hour)
	made := func() time.Time { return t0 }
	w := keepBoth(newWorld(t, memstore.Options{Now: made}, memstore.Options{TimeGranularity: time.Second}))
	mustPut(t, w.a, "b/x", "in folder", t0)
	mustPut(t, w.b, "b", "the file", t0.Add(time.Minute))
	for i := range 3 {
		fmt.Println("=== session", i)
		rep, _ := w.syncErr()
		fmt.Println(show(w.a.Files()), w.a.Names(), "|", show(w.b.Files()), w.b.Names(), rep.Skipped)
	}
}
