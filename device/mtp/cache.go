package mtp

import (
	"strings"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// rootParent is the parent handle that names a storage's root in GetObjectHandles and
// SendObjectInfo.
const rootParent = 0xFFFFFFFF

// isRootParent tells whether an ObjectInfo's ParentObject means "at the storage root": 0 by the
// specification, 0xFFFFFFFF on some devices.
func isRootParent(h uint32) bool { return h == 0 || h == rootParent }

// node is one object the Device knows the handle of, in this session only: MTP renumbers handles
// at every OpenSession, so a handle is never an identity beyond it.
//
// A session may know a node for each of hundreds of thousands of objects, so a node holds only
// what every object needs (48 bytes); when a folder was last listed is kept by the cache.
type node struct {
	parent *node
	// children is nil until the folder was listed; then it holds every child with a safe name.
	children *children
	name     string
	storage  device.StorageID
	handle   uint32 // rootParent for a storage root
	dir      bool
}

func (n *node) isRoot() bool { return n.parent == nil }

// path is the node's '/'-separated path inside its storage ("" for the root).
func (n *node) path() string {
	if n.isRoot() {
		return ""
	}
	var parts []string
	for x := n; !x.isRoot(); x = x.parent {
		parts = append(parts, x.name)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/")
}

// param is the handle to pass as a parent in GetObjectHandles and SendObjectInfo.
func (n *node) param() uint32 {
	if n.isRoot() {
		return rootParent
	}
	return n.handle
}

// cache maps paths to handles for one session. It is guarded by the Device's lock.
type cache struct {
	roots    map[device.StorageID]*node
	byHandle map[uint32]*node
	// listed is when each listed folder's children were last brought up to date from the
	// device.
	listed map[*node]time.Time
}

func newCache() *cache {
	c := &cache{}
	c.reset()
	return c
}

// reset forgets every handle (after the device renumbered them).
func (c *cache) reset() {
	c.roots = map[device.StorageID]*node{}
	c.byHandle = map[uint32]*node{}
	c.listed = map[*node]time.Time{}
}

// fresh tells whether n's children were brought up to date from the device less than d ago.
func (c *cache) fresh(n *node, d time.Duration) bool {
	t, ok := c.listed[n]
	return ok && n.children != nil && time.Since(t) < d
}

func (c *cache) root(s device.StorageID) *node {
	r := c.roots[s]
	if r == nil {
		r = &node{storage: s, handle: rootParent, dir: true}
		c.roots[s] = r
	}
	return r
}

// dropStorage forgets a storage that went away.
func (c *cache) dropStorage(s device.StorageID) {
	if r := c.roots[s]; r != nil {
		for _, ch := range r.children.all() {
			c.forget(ch)
		}
		delete(c.listed, r)
		delete(c.roots, s)
	}
}

// entry is what the device says about one object.
type entry struct {
	handle  uint32
	storage device.StorageID
	parent  uint32
	name    string
	dir     bool
	size    int64
	mtime   time.Time
}

// add records a child of parent (which must have been listed), replacing a node of the same name
// or the same handle.
func (c *cache) add(parent *node, e entry) *node {
	if old := c.byHandle[e.handle]; old != nil {
		if old.parent == parent && old.name == e.name && old.dir == e.dir {
			return old
		}
		c.remove(old)
	}
	if old := parent.children.get(e.name); old != nil {
		c.remove(old)
	}
	n := &node{storage: parent.storage, handle: e.handle, name: e.name, dir: e.dir, parent: parent}
	if parent.children == nil {
		parent.children = newChildren(0)
	}
	parent.children.put(n)
	c.byHandle[e.handle] = n
	return n
}

// remove forgets n and everything below it.
func (c *cache) remove(n *node) {
	if n.parent != nil {
		n.parent.children.del(n.name, n)
	}
	c.forget(n)
}

func (c *cache) forget(n *node) {
	if c.byHandle[n.handle] == n {
		delete(c.byHandle, n.handle)
	}
	delete(c.listed, n)
	for _, ch := range n.children.all() {
		c.forget(ch)
	}
	n.children = nil
}

// setChildren makes entries the complete list of parent's children, keeping the nodes (and
// their own cached children) of objects that did not change.
func (c *cache) setChildren(parent *node, entries []entry, now time.Time) {
	keep := make(map[uint32]bool, len(entries))
	for _, e := range entries {
		keep[e.handle] = true
	}
	var gone []*node
	for _, ch := range parent.children.all() {
		if !keep[ch.handle] {
			gone = append(gone, ch)
		}
	}
	for _, ch := range gone {
		c.remove(ch)
	}
	if parent.children == nil {
		parent.children = newChildren(len(entries))
	}
	for _, e := range entries {
		c.add(parent, e)
	}
	c.listed[parent] = now
}

// move records that n was renamed to name inside dst, keeping what is cached below it (MTP
// keeps handles across MoveObject). When dst was never listed, n is forgotten.
func (c *cache) move(n, dst *node, name string) {
	if n.parent != nil {
		n.parent.children.del(n.name, n)
	}
	if dst.children == nil {
		c.forget(n)
		return
	}
	if old := dst.children.get(name); old != nil && old != n {
		c.remove(old)
	}
	n.parent, n.name = dst, name
	dst.children.put(n)
}
