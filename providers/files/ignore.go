package files

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
)

// TempPrefix starts the names of the temporary files the files provider writes before renaming
// them into place, on the desktop and on the device. They are always ignored.
const TempPrefix = ".cradle-part-"

// TempName returns a new name for a temporary file of this process: TempPrefix, the process ID,
// a dash and a random part. A process killed in the middle of a write leaves such a file behind;
// the process ID tells, later, that nobody will finish it (StaleTemp).
func TempName() string {
	return TempPrefix + strconv.Itoa(os.Getpid()) + "-" + rand.Text()[:16]
}

// StaleTemp tells whether name is a temporary file (TempName) of a process that no longer runs:
// what a killed Cradle left in the middle of a write, which may be removed. Names without a
// process ID, and those of running processes (this one included), are not stale.
func StaleTemp(name string) bool {
	rest, ok := strings.CutPrefix(name, TempPrefix)
	if !ok {
		return false
	}
	id, _, ok := strings.Cut(rest, "-")
	if !ok {
		return false
	}
	pid, err := strconv.Atoi(id)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	// Signal 0 checks that the process exists: ESRCH means it does not (EPERM: it does, as
	// another user's).
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// MetaDir is the folder at the top of a device where Cradle keeps its replica metadata. It is
// never synced, at any depth.
const MetaDir = ".cradle"

// BuiltinIgnored tells whether a name is never synced: Cradle's own temporary files and its
// metadata folder, editors' backups, locks and swap files (name~, .name.swp, .#name, #name#,
// .~lock.name#, ~$name), half-finished downloads (*.part, *.crdownload, .goutputstream-*), and
// the litter operating systems leave in folders (.DS_Store, ._name, .Spotlight-V100, .Trashes,
// .fseventsd, .Trash-1000, Thumbs.db, ehthumbs.db, desktop.ini, System Volume Information,
// $RECYCLE.BIN). It is written out by hand, not as glob patterns, because it runs for every
// item of every enumeration.
func BuiltinIgnored(name string) bool {
	n := len(name)
	if n == 0 {
		return false
	}
	switch name[n-1] {
	case '~':
		return true
	case '#':
		if name[0] == '#' && n >= 2 || strings.HasPrefix(name, ".~lock.") {
			return true
		}
	}
	switch name[0] {
	case '.':
		switch {
		case strings.HasPrefix(name, TempPrefix), name == MetaDir, name == ".DS_Store",
			strings.HasPrefix(name, "._"), strings.HasPrefix(name, ".#"),
			strings.HasPrefix(name, ".goutputstream-"), strings.HasPrefix(name, ".Trash-"),
			name == ".Trashes", name == ".Spotlight-V100", name == ".fseventsd":
			return true
		case n >= 5 && name[n-4] == '.' && name[n-3] == 's' && name[n-2] == 'w' && name[n-1] >= 'a' && name[n-1] <= 'p':
			return true // Vim swap files: .name.swp, .name.swo, ...
		}
	case '~':
		if name[1:2] == "$" {
			return true
		}
	case 'T':
		return name == "Thumbs.db"
	case 'e':
		return name == "ehthumbs.db"
	case 'd':
		return name == "desktop.ini"
	case 'S':
		return name == "System Volume Information"
	case '$':
		return name == "$RECYCLE.BIN"
	}
	return strings.HasSuffix(name, ".swp") || strings.HasSuffix(name, ".part") || strings.HasSuffix(name, ".crdownload")
}

// junkNames are files an operating system drops in folders on its own. A folder that holds
// nothing else may be deleted with them (see DesktopStore.Delete).
var junkNames = map[string]bool{
	".DS_Store":   true,
	"Thumbs.db":   true,
	"ehthumbs.db": true,
	"desktop.ini": true,
}

// Ignorer decides which items are not synced: the built-in rules (BuiltinIgnored) and the user's
// patterns. A nil *Ignorer ignores nothing.
//
// Patterns use path.Match syntax. A pattern without '/' matches the base name of an item at any
// depth ("*.log", "node_modules"); a pattern with '/' matches the whole relative path from the
// top of the partnership's folder ("build/*.o", "Camera/Thumbnails"). A trailing '/' limits a
// pattern to folders ("cache/"). An ignored folder's contents are ignored too. "**" is not
// supported.
type Ignorer struct {
	builtin  bool   // apply BuiltinIgnored
	base     []rule // matched against every path component's name
	full     []rule // matched against the relative path and each of its parent prefixes
	patterns []string
}

type rule struct {
	pattern     string
	foldersOnly bool
}

// NewIgnorer returns an Ignorer with the built-in rules and the user's patterns. A malformed
// pattern is an error that names it.
func NewIgnorer(patterns []string) (*Ignorer, error) {
	ig := &Ignorer{builtin: true}
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		r := rule{pattern: strings.Trim(p, "/"), foldersOnly: strings.HasSuffix(p, "/")}
		if r.pattern == "" {
			return nil, fmt.Errorf("ignore pattern %q matches nothing", p)
		}
		if _, err := path.Match(r.pattern, ""); err != nil {
			return nil, fmt.Errorf("ignore pattern %q is malformed (use * ? [abc] and / only): %w", p, err)
		}
		if strings.Contains(r.pattern, "/") {
			ig.full = append(ig.full, r)
		} else {
			ig.base = append(ig.base, r)
		}
		ig.patterns = append(ig.patterns, p)
	}
	return ig, nil
}

// ParsePatterns splits an option value of kind patterns ("*.log, build/, .git") into patterns.
func ParsePatterns(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Patterns returns the user's patterns, as given.
func (ig *Ignorer) Patterns() []string { return ig.patterns }

// Ignored tells whether the item at the '/'-separated relative path rel is ignored; dir says
// whether the item itself is a folder. Every parent folder of rel is checked too.
func (ig *Ignorer) Ignored(rel string, dir bool) bool {
	if ig == nil {
		return false
	}
	for i := 0; ; {
		j := strings.IndexByte(rel[i:], '/')
		last := j < 0
		end := len(rel)
		if !last {
			end = i + j
		}
		isDir := dir || !last
		if ig.matchBase(rel[i:end], isDir) || ig.matchFull(rel[:end], isDir) {
			return true
		}
		if last {
			return false
		}
		i = end + 1
	}
}

// IgnoredName tells whether an item named name, directly inside the already-accepted folder
// parent, is ignored. Walks use it to check one component at a time.
func (ig *Ignorer) IgnoredName(parent, name string, dir bool) bool {
	if ig == nil {
		return false
	}
	if ig.matchBase(name, dir) {
		return true
	}
	if len(ig.full) == 0 {
		return false
	}
	rel := name
	if parent != "" {
		rel = parent + "/" + name
	}
	return ig.matchFull(rel, dir)
}

func (ig *Ignorer) matchBase(name string, dir bool) bool {
	if ig.builtin && BuiltinIgnored(name) {
		return true
	}
	for _, r := range ig.base {
		if r.foldersOnly && !dir {
			continue
		}
		if ok, _ := path.Match(r.pattern, name); ok {
			return true
		}
	}
	return false
}

func (ig *Ignorer) matchFull(rel string, dir bool) bool {
	for _, r := range ig.full {
		if r.foldersOnly && !dir {
			continue
		}
		if ok, _ := path.Match(r.pattern, rel); ok {
			return true
		}
	}
	return false
}
