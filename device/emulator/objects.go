package emulator

import (
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/device/mtp"
)

// partPrefix starts the names of uploads in progress; they are never objects.
const partPrefix = ".cradle-emu-part-"

// partName starts the name of an upload in progress of process pid for the object handle h
// (os.CreateTemp adds a random part). The process ID tells a leftover of a process killed in the
// middle of an upload (stalePart), which nobody will finish.
func partName(pid int, h uint32) string {
	return partPrefix + strconv.Itoa(pid) + "-" + strconv.FormatUint(uint64(h), 16) + "-"
}

// stalePart tells whether name is an upload in progress of a process that no longer runs. Names
// without a process ID and those of running processes (this one included) are not stale.
func stalePart(name string) bool {
	rest, ok := strings.CutPrefix(name, partPrefix)
	if !ok {
		return false
	}
	id, rest, ok := strings.Cut(rest, "-")
	if !ok || !strings.Contains(rest, "-") {
		return false
	}
	pid, err := strconv.Atoi(id)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return processGone(pid)
}

// storage is one folder served as an MTP storage.
type storage struct {
	id      uint32
	dir     string
	desc    string
	typ     uint16
	root    *object
	ejected bool // an SD card taken out
}

// object is a file or folder the device has given a handle in this session.
//
// The table holds one for every object the initiator saw or made (a phone keeps them in its own
// object database): 64 bytes each, the modification time as Unix nanoseconds.
type object struct {
	st     *storage
	parent *object // nil for a storage root
	name   string
	// children is nil until the folder was enumerated in this session.
	children map[string]*object
	// size and mtime (Unix nanoseconds) are what the initiator was last told (or could have
	// been).
	size   int64
	mtime  int64
	handle uint32 // 0 for a storage root
	dir    bool
	// watched folders were listed by the initiator: changes in them raise events.
	watched bool
}

// table is the device's object table: handles for the objects seen in this session. It is
// guarded by Emulator.mu.
type table struct {
	e        *Emulator
	byHandle map[uint32]*object
	next     uint32
	rnd      *rand.Rand
	session  uint32 // 0 when no session is open
	lastTID  uint32
	// listing is what the last GetObjectHandles read (see responder.listFolder).
	listing  listing
	stale    bool // a session a crashed program left open
	pending  *pendingSend
	sessions int
	// held are the host paths of objects the initiator created that get no handle before the
	// time they map to (Options.LateObjects).
	held map[string]time.Time
}

// listing is the folders one GetObjectHandles transaction read.
type listing struct {
	session, tid uint32
	folders      []*object
}

// pendingSend is what SendObjectInfo announced, waiting for SendObject.
type pendingSend struct {
	handle uint32
	parent *object
	name   string
	size   int64 // -1 when unknown (4 GiB or more)
	mtime  time.Time
	// registered: the object was made at SendObjectInfo (Options.RegisterAtInfo).
	registered bool
}

func (t *table) init(e *Emulator) {
	t.e = e
	t.rnd = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5EED))
	t.clear()
}

// clear forgets every handle and watch: a new session.
func (t *table) clear() {
	for _, o := range t.byHandle {
		if o.watched && t.e.watch != nil {
			t.e.watch.remove(o)
		}
	}
	for _, st := range t.e.storages {
		if st.root != nil && st.root.watched && t.e.watch != nil {
			t.e.watch.remove(st.root)
		}
		st.root = &object{st: st, dir: true}
	}
	t.byHandle = map[uint32]*object{}
	t.next = 1
	t.pending = nil
	t.held = nil
}

// newHandle returns an unused handle: the next number, or a random one with ShuffleHandles.
func (t *table) newHandle() uint32 {
	if t.e.opts.ShuffleHandles {
		for {
			h := t.rnd.Uint32()
			if h != 0 && h != 0xFFFFFFFF && t.byHandle[h] == nil {
				return h
			}
		}
	}
	for t.byHandle[t.next] != nil || t.next == 0 || t.next == 0xFFFFFFFF {
		t.next++
	}
	h := t.next
	t.next++
	return h
}

// peekHandle returns the handle newHandle would give next without taking it: the guess a device
// that registers new objects late answers SendObjectInfo with.
func (t *table) peekHandle() uint32 {
	if t.e.opts.ShuffleHandles {
		for {
			h := t.rnd.Uint32()
			if h != 0 && h != 0xFFFFFFFF && t.byHandle[h] == nil {
				return h
			}
		}
	}
	h := t.next
	for t.byHandle[h] != nil || h == 0 || h == 0xFFFFFFFF {
		h++
	}
	return h
}

// late tells whether the object the initiator just created at host path (a child of parent
// called name) gets its handle later, or never (a hidden name), instead of now. A late object is
// held back until Options.LateObjects has passed; then the watcher registers it if parent is
// watched, else parent's next listing does. With Options.PrefixNames, one whose name starts a
// known sibling's in a listed folder is held back until the session ends. The caller holds e.mu.
func (t *table) late(parent *object, name, path string) bool {
	if !t.visible(name) {
		return true
	}
	if t.held == nil {
		t.held = map[string]time.Time{}
	}
	if parent.watched && t.prefixOf(parent, name) != nil {
		t.held[path] = time.Now().Add(100 * 365 * 24 * time.Hour) // cleared with the session
		return true
	}
	d := t.e.opts.LateObjects
	if d <= 0 {
		return false
	}
	t.held[path] = time.Now().Add(d)
	w := t.e.watch
	time.AfterFunc(d, func() { w.touch(parent) })
	return true
}

// prefixOf returns, with Options.PrefixNames, the known child of parent whose name name starts
// (and is not): the object QEMU's usb-mtp confuses a new object called name with. The caller
// holds e.mu.
func (t *table) prefixOf(parent *object, name string) *object {
	if !t.e.opts.PrefixNames {
		return nil
	}
	for _, c := range sortedChildren(parent) {
		if c.name != name && strings.HasPrefix(c.name, name) {
			return c
		}
	}
	return nil
}

// guess is the handle a device that registers new objects late answers SendObjectInfo with for
// a new child of parent called name: the next free one, or the one of the sibling whose name it
// starts (Options.PrefixNames). The caller holds e.mu.
func (t *table) guess(parent *object, name string) uint32 {
	if c := t.prefixOf(parent, name); c != nil {
		return c.handle
	}
	return t.peekHandle()
}

// isHeld tells whether the object at host path is still held back; the caller holds e.mu.
func (t *table) isHeld(path string) bool {
	until, ok := t.held[path]
	if !ok {
		return false
	}
	if time.Now().Before(until) {
		return true
	}
	delete(t.held, path)
	return false
}

// renumber gives every known object a new handle; the old ones become invalid.
func (t *table) renumber() {
	old := t.byHandle
	t.byHandle = map[uint32]*object{}
	t.next += 0x10000
	for _, o := range old {
		o.handle = t.newHandle()
		t.byHandle[o.handle] = o
	}
	t.pending = nil
}

// storage returns the storage with id, nil when there is none or it was ejected.
func (t *table) storage(id uint32) *storage {
	for _, st := range t.e.storages {
		if st.id == id && !st.ejected {
			return st
		}
	}
	return nil
}

// present returns the storages that are not ejected.
func (t *table) present() []*storage {
	var out []*storage
	for _, st := range t.e.storages {
		if !st.ejected {
			out = append(out, st)
		}
	}
	return out
}

// path is the object's file on the host.
// Names are single path components (what a folder read gives, or what validName accepted), so
// the path is built with one allocation and no cleaning.
func (t *table) path(o *object) string {
	if o.parent == nil {
		return o.st.dir
	}
	dir := strings.TrimSuffix(o.st.dir, string(filepath.Separator)) // "/" served
	n := len(dir)
	for x := o; x.parent != nil; x = x.parent {
		n += 1 + len(x.name)
	}
	b := make([]byte, n)
	copy(b, dir)
	for x := o; x.parent != nil; x = x.parent {
		n -= len(x.name)
		copy(b[n:], x.name)
		n--
		b[n] = filepath.Separator
	}
	return string(b)
}

// visible tells whether a directory entry is an object.
func (t *table) visible(name string) bool {
	if strings.HasPrefix(name, partPrefix) {
		return false
	}
	return !t.e.opts.HideDotFiles || !strings.HasPrefix(name, ".")
}

// add gives a new child of parent a handle.
func (t *table) add(parent *object, name string, fi fs.FileInfo) *object {
	o := &object{handle: t.newHandle(), st: parent.st, parent: parent, name: name, dir: fi.IsDir()}
	o.record(fi)
	if parent.children == nil {
		parent.children = map[string]*object{}
	}
	parent.children[name] = o
	t.byHandle[o.handle] = o
	return o
}

// modTime is the modification time the initiator was last told.
func (o *object) modTime() time.Time { return time.Unix(0, o.mtime) }

func (o *object) record(fi fs.FileInfo) {
	o.size, o.mtime = fi.Size(), fi.ModTime().UnixNano()
	if o.dir {
		o.size = 0
	}
}

// differs tells whether file o's size or time on the host is not what was last recorded.
func (o *object) differs(fi fs.FileInfo) bool {
	return !o.dir && (fi.Size() != o.size || fi.ModTime().UnixNano() != o.mtime)
}

// seen records what the initiator is told of o when it asks (a listing, a read). A file of a
// watched folder that changed since the last record, by someone else than the initiator (whose
// own writes record as they land), is announced too, as a phone's own watcher announces a
// change however soon the initiator asks: recording it silently would swallow the event the
// folder's rescan was about to send, and the initiator listens only for named changes.
func (t *table) seen(o *object, fi fs.FileInfo) {
	changed := o.differs(fi)
	o.record(fi)
	if changed && o.parent != nil && o.parent.watched {
		t.e.event(mtp.EventObjectInfoChanged, o.handle)
	}
}

// remove forgets o and everything below it.
func (t *table) remove(o *object) {
	if o.parent != nil && o.parent.children[o.name] == o {
		delete(o.parent.children, o.name)
	}
	t.forget(o)
}

func (t *table) forget(o *object) {
	if t.byHandle[o.handle] == o {
		delete(t.byHandle, o.handle)
	}
	if o.watched {
		o.watched = false
		t.e.watch.remove(o)
	}
	for _, c := range o.children {
		t.forget(c)
	}
	o.children = nil
}

// readDir returns the visible files and folders in o, by name.
func (t *table) readDir(o *object) (map[string]fs.FileInfo, error) {
	t.e.stats.folderReads.Add(1)
	dir := t.path(o)
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	out := make(map[string]fs.FileInfo, len(entries))
	for _, de := range entries {
		name := de.Name()
		if de.Type().IsRegular() && stalePart(name) {
			// An upload that a killed process left unfinished: a device discards it.
			if err := os.Remove(filepath.Join(dir, name)); err == nil {
				t.e.log.Info("emulator: removed an unfinished upload", "path", filepath.Join(dir, name))
			}
			continue
		}
		if !t.visible(name) || !(de.Type().IsDir() || de.Type().IsRegular()) {
			continue
		}
		if len(t.held) > 0 && t.isHeld(filepath.Join(dir, name)) {
			continue
		}
		fi, err := lstatIn(f, name)
		if err != nil {
			continue // gone since ReadDir
		}
		out[name] = fi
	}
	if t.e.opts.PTP && o.parent == nil {
		// "Transfer photos": only the photo folders are shown.
		for name := range out {
			if name != "DCIM" && name != "Pictures" {
				delete(out, name)
			}
		}
	}
	return out, nil
}

// enumerate brings o's children up to date with the folder on the host, and watches it: the
// initiator listed it.
func (t *table) enumerate(o *object) error {
	infos, err := t.readDir(o)
	if err != nil {
		return err
	}
	if o.children == nil {
		o.children = make(map[string]*object, len(infos))
	}
	for name, c := range o.children {
		if fi, ok := infos[name]; !ok || fi.IsDir() != c.dir {
			t.remove(c)
		}
	}
	for name, fi := range infos {
		if c := o.children[name]; c != nil {
			t.seen(c, fi)
			continue
		}
		t.add(o, name, fi)
	}
	if !o.watched {
		o.watched = true
		t.e.watch.add(o)
	}
	return nil
}

// walk enumerates every folder below o, calling fn for each object.
func (t *table) walk(o *object, fn func(*object)) error {
	if err := t.enumerate(o); err != nil {
		return err
	}
	for _, c := range sortedChildren(o) {
		fn(c)
		if c.dir {
			if err := t.walk(c, fn); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	return nil
}

func sortedChildren(o *object) []*object {
	out := make([]*object, 0, len(o.children))
	for _, c := range o.children {
		out = append(out, c)
	}
	slicesSortByName(out)
	return out
}

// rescan compares a watched folder with the host and raises events for what changed.
func (t *table) rescan(o *object) {
	if !o.watched {
		return
	}
	infos, err := t.readDir(o)
	if err != nil {
		return // the folder itself went: its parent's rescan reports it
	}
	for name, c := range o.children {
		fi, ok := infos[name]
		if !ok || fi.IsDir() != c.dir {
			h := c.handle
			t.remove(c)
			t.e.event(mtp.EventObjectRemoved, h)
		}
	}
	for _, name := range sortedNames(infos) {
		fi := infos[name]
		c := o.children[name]
		if c == nil {
			c = t.add(o, name, fi)
			t.e.event(mtp.EventObjectAdded, c.handle)
			continue
		}
		if c.differs(fi) {
			c.record(fi)
			t.e.event(mtp.EventObjectInfoChanged, c.handle)
		}
	}
}

// lookup returns the object with handle h, checking that it still exists on the host.
func (t *table) lookup(h uint32) (*object, fs.FileInfo) {
	o := t.byHandle[h]
	if o == nil {
		return nil, nil
	}
	fi, err := os.Lstat(t.path(o))
	if err != nil || fi.IsDir() != o.dir {
		t.remove(o)
		return nil, nil
	}
	return o, fi
}

// folder resolves a parent parameter: 0 or 0xFFFFFFFF is the root of st.
func (t *table) folder(st *storage, h uint32) *object {
	if h == 0 || h == 0xFFFFFFFF {
		return st.root
	}
	o, _ := t.lookup(h)
	if o == nil || !o.dir {
		return nil
	}
	return o
}

func slicesSortByName(v []*object) {
	slices.SortFunc(v, func(a, b *object) int { return strings.Compare(a.name, b.name) })
}

func sortedNames[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
