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
	d := &device{store: memstore.New(memstore.Options{TimeGranularity: time.Second})}
	a, b := newComputer(t, "A"), newComputer(t, "B")
	cfg := repl.Config{Policy: repl.Policy{Rule: repl.KeepBoth}}
	sync := func(c *computer) {
		fmt.Println("===", c.name)
		c.syncWith(t, d, cfg, true)
	}
	t0 := recent().Add(-time.Hour)
	mustPut(t, a.desktop, "d.txt", "version 1", t0)
	sync(a)
	mustPut(t, a.desktop, "d.txt", "version A", t0.Add(time.Minute))
	mustPut(t, d.store, "d.txt", "phone ver", t0.Add(2*time.Minute))
	sync(b)
	d.store.Remove("d.txt")
	sync(a)
	fmt.Println(repl.DumpReplica(a.hf, "device"))
	sync(b)
	fmt.Println(repl.DumpReplica(b.hf, "desktop"), repl.DumpReplica(b.hf, "device"))
	sync(a)
	fmt.Println(show(a.desktop.Files()), show(b.desktop.Files()), show(d.store.Files()))
}
