package mtp

import (
	"hash/maphash"
	"iter"
)

// children is a listed folder's children by name, in the path cache. A session may know
// hundreds of thousands of objects, so it is an open-addressed table of the nodes themselves
// (linear probing, at most 13/16 full, a node's name is its key): 8 bytes a slot, 10 to 20 bytes a
// child, where a map[string]*node takes about 40. The nil *children is an empty folder never
// listed. Like the cache, it is guarded by the Device's lock.
type children struct {
	slots []*node // len is 0 or a power of two
	n     int
}

var childSeed = maphash.MakeSeed()

func newChildren(hint int) *children {
	c := &children{}
	if hint > 0 {
		c.slots = make([]*node, slotsFor(hint))
	}
	return c
}

// slotsFor is the table size that holds n children: the least power of two, at least 8, that is
// at most 13/16 full with them.
func slotsFor(n int) int {
	s := 8
	for n*16 > s*13 {
		s *= 2
	}
	return s
}

func (c *children) home(name string) int {
	return int(maphash.String(childSeed, name) & uint64(len(c.slots)-1))
}

// len returns how many children c holds (0 for nil).
func (c *children) len() int {
	if c == nil {
		return 0
	}
	return c.n
}

// get returns the child called name, or nil.
func (c *children) get(name string) *node {
	if c == nil || c.n == 0 {
		return nil
	}
	mask := len(c.slots) - 1
	for i := c.home(name); ; i = (i + 1) & mask {
		switch s := c.slots[i]; {
		case s == nil:
			return nil
		case s.name == name:
			return s
		}
	}
}

// put adds n, replacing the child of the same name.
func (c *children) put(n *node) {
	if (c.n+1)*16 > len(c.slots)*13 {
		c.resize(slotsFor(c.n + 1))
	}
	mask := len(c.slots) - 1
	for i := c.home(n.name); ; i = (i + 1) & mask {
		switch s := c.slots[i]; {
		case s == nil:
			c.slots[i] = n
			c.n++
			return
		case s.name == n.name:
			c.slots[i] = n
			return
		}
	}
}

// del removes the child called name, if it is n (any child of that name when n is nil), and
// tells whether it removed one.
func (c *children) del(name string, n *node) bool {
	if c == nil || c.n == 0 {
		return false
	}
	mask := len(c.slots) - 1
	i := c.home(name)
	for ; ; i = (i + 1) & mask {
		s := c.slots[i]
		if s == nil {
			return false
		}
		if s.name == name {
			if n != nil && s != n {
				return false
			}
			break
		}
	}
	// Shift back the entries after it that probed past slot i, so every entry stays reachable
	// from its home slot without tombstones.
	for j := i; ; {
		j = (j + 1) & mask
		s := c.slots[j]
		if s == nil {
			break
		}
		k := c.home(s.name)
		if (i < j && i < k && k <= j) || (i > j && (i < k || k <= j)) {
			continue // its home lies between the hole and it: it stays
		}
		c.slots[i] = s
		i = j
	}
	c.slots[i] = nil
	c.n--
	if len(c.slots) > 8 && c.n*16 < len(c.slots) {
		c.resize(slotsFor(c.n))
	}
	return true
}

func (c *children) resize(size int) {
	old := c.slots
	c.slots = make([]*node, size)
	mask := size - 1
	for _, s := range old {
		if s == nil {
			continue
		}
		i := c.home(s.name)
		for c.slots[i] != nil {
			i = (i + 1) & mask
		}
		c.slots[i] = s
	}
}

// all yields each child with its name, in no particular order. The table must not change
// while it runs.
func (c *children) all() iter.Seq2[string, *node] {
	return func(yield func(string, *node) bool) {
		if c == nil {
			return
		}
		for _, s := range c.slots {
			if s != nil && !yield(s.name, s) {
				return
			}
		}
	}
}
