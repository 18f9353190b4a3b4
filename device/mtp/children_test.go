package mtp

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestChildren checks the path cache's table of a folder's children against a map, through
// random puts, deletes and lookups that make it grow and shrink.
func TestChildren(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var c *children
	if c.get("a") != nil || c.len() != 0 || c.del("a", nil) {
		t.Fatal("a nil table is not empty")
	}
	for range c.all() {
		t.Fatal("a nil table yields a child")
	}
	c = newChildren(3)
	want := map[string]*node{}
	for i := range 20000 {
		pool := 50
		if i > 5000 && i < 15000 {
			pool = 2000 // the table grows, then shrinks again
		}
		name := fmt.Sprintf("f%d", rnd.IntN(pool))
		switch rnd.IntN(3) {
		case 0:
			n := &node{name: name, handle: uint32(i)}
			c.put(n)
			want[name] = n
		case 1:
			var which *node
			if rnd.IntN(4) == 0 {
				which = &node{name: name} // not the one held: nothing is removed
			}
			got := c.del(name, which)
			_, had := want[name]
			if got != (had && which == nil) {
				t.Fatalf("step %d: del(%q, %v) = %v, want %v", i, name, which != nil, got, had && which == nil)
			}
			if got {
				delete(want, name)
			}
		}
		if got := c.get(name); got != want[name] {
			t.Fatalf("step %d: get(%q) = %v, want %v", i, name, got, want[name])
		}
		if c.len() != len(want) {
			t.Fatalf("step %d: len() = %d, want %d", i, c.len(), len(want))
		}
		if len(c.slots)*13 < c.n*16 {
			t.Fatalf("step %d: %d children in %d slots", i, c.n, len(c.slots))
		}
	}
	seen := map[string]bool{}
	for name, n := range c.all() {
		if want[name] != n || seen[name] {
			t.Fatalf("all() yields %q (%p), want %p once", name, n, want[name])
		}
		seen[name] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("all() yields %d children, want %d", len(seen), len(want))
	}
}
