package fsstore

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
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
// process ID, and those of running processes, are not stale; this process's are only when it
// gave up on them (abandonTemp).
func StaleTemp(name string) bool {
	rest, ok := strings.CutPrefix(name, TempPrefix)
	if !ok {
		return false
	}
	if _, ok := abandoned.Load(name); ok {
		return true
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

// abandoned holds the names of this process's temporary files that a failed write could not
// remove: they moved with their folder, which the user renamed during the write. Nobody else
// removes them while this process runs, and a `cradle watch` runs for days.
var abandoned sync.Map

// removeTemp removes a temporary file this process wrote and no longer wants; when it is not
// where it was written, the enumeration that meets it removes it (StaleTemp).
func removeTemp(p string) {
	if err := os.Remove(p); err != nil {
		abandoned.Store(path.Base(p), struct{}{})
	}
}

// tempRemoved forgets an abandoned temporary file once it is gone.
func tempRemoved(name string) { abandoned.Delete(name) }

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
// Patterns follow .gitignore's rules, matched against paths relative to the top of the
// partnership's folder:
//   - A pattern without '/' (but maybe a trailing one) matches a name at any depth ("*.log",
//     "node_modules").
//   - A pattern with a '/' at its start or in its middle is anchored at the top: "/todo.txt"
//     matches the top-level todo.txt only, "build/*.o" the .o files directly in the top-level
//     build folder. "./todo.txt" is the same as "/todo.txt".
//   - A trailing '/' limits a pattern to folders ("cache/").
//   - '*' and '?' match within a name, "[abc]" a class; "**" as a whole part of a path matches any
//     number of folders ("**/logs", "docs/**", "a/**/b").
//   - A leading '!' takes an earlier pattern back ("*.log, !keep.log"); the last pattern that
//     matches decides. As in git, nothing inside an ignored folder can be taken back.
//   - A leading '#' makes a comment; write "\#name" and "\!name" for names starting with them.
//
// An ignored folder's contents are ignored too. The built-in rules always apply.
type Ignorer struct {
	builtin  bool // apply BuiltinIgnored
	rules    []rule
	patterns []string
}

// rule is one compiled pattern.
type rule struct {
	parts       []string // '/'-separated parts; "**" matches any number of them
	anchored    bool     // matched against the whole relative path, else against names
	foldersOnly bool
	negate      bool
}

// NewIgnorer returns an Ignorer with the built-in rules and the user's patterns. A malformed
// pattern is an error that names it.
func NewIgnorer(patterns []string) (*Ignorer, error) {
	ig := &Ignorer{builtin: true}
	for _, p := range patterns {
		r, ok, err := compileRule(p)
		if err != nil {
			return nil, err
		}
		if ok {
			ig.rules = append(ig.rules, r)
			ig.patterns = append(ig.patterns, strings.TrimSpace(p))
		}
	}
	return ig, nil
}

// compileRule parses one pattern; ok is false for a blank pattern or a comment.
func compileRule(p string) (rule, bool, error) {
	orig := p
	p = strings.TrimSpace(p)
	if p == "" || strings.HasPrefix(p, "#") {
		return rule{}, false, nil
	}
	var r rule
	if strings.HasPrefix(p, "!") {
		r.negate, p = true, p[1:]
	} else if strings.HasPrefix(p, `\!`) || strings.HasPrefix(p, `\#`) {
		p = p[1:]
	}
	if strings.HasSuffix(p, "/") {
		r.foldersOnly = true
		p = strings.TrimRight(p, "/")
	}
	switch {
	case strings.HasPrefix(p, "./"):
		r.anchored, p = true, strings.TrimLeft(p[2:], "/")
	case strings.HasPrefix(p, "/"):
		r.anchored, p = true, strings.TrimLeft(p, "/")
	case strings.Contains(p, "/"):
		r.anchored = true
	}
	if p == "" || p == "." {
		return rule{}, false, fmt.Errorf("ignore pattern %q matches nothing", orig)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return rule{}, false, fmt.Errorf("ignore pattern %q has an empty, '.' or '..' part", orig)
		}
		if part != "**" {
			if _, err := path.Match(part, ""); err != nil {
				return rule{}, false, fmt.Errorf("ignore pattern %q is malformed (use * ? [abc] ** ! and / only): %w", orig, err)
			}
		}
		r.parts = append(r.parts, part)
	}
	if !r.anchored && len(r.parts) == 1 && r.parts[0] == "**" {
		r.anchored = true
	}
	return r, true, nil
}

// match tells whether the rule matches the item at rel (its parts), a folder when dir.
func (r *rule) match(rel []string, dir bool) bool {
	if r.foldersOnly && !dir {
		return false
	}
	if !r.anchored {
		ok, _ := path.Match(r.parts[0], rel[len(rel)-1])
		return ok
	}
	return matchParts(r.parts, rel)
}

// matchParts matches path parts against pattern parts, "**" standing for any number of parts.
func matchParts(pat, rel []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			pat = pat[1:]
			if len(pat) == 0 {
				return len(rel) > 0 // "docs/**" matches what is inside docs, not docs itself
			}
			for i := 0; i <= len(rel); i++ {
				if matchParts(pat, rel[i:]) {
					return true
				}
			}
			return false
		}
		if len(rel) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], rel[0]); !ok {
			return false
		}
		pat, rel = pat[1:], rel[1:]
	}
	return len(rel) == 0
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
// whether the item itself is a folder. Every parent folder of rel is checked too: an item in an
// ignored folder is ignored.
func (ig *Ignorer) Ignored(rel string, dir bool) bool {
	if ig == nil {
		return false
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		last := i == len(parts)-1
		if ig.decide(parts[:i+1], dir || !last) {
			return true
		}
	}
	return false
}

// IgnoredName tells whether an item named name, directly inside the already-accepted folder
// parent, is ignored. Walks use it to check one component at a time.
func (ig *Ignorer) IgnoredName(parent, name string, dir bool) bool {
	if ig == nil {
		return false
	}
	if ig.builtin && BuiltinIgnored(name) {
		return true
	}
	if len(ig.rules) == 0 {
		return false
	}
	var parts []string
	if parent != "" {
		parts = strings.Split(parent, "/")
	}
	return ig.decide(append(parts, name), dir)
}

// decide tells whether the item at parts (whose parents are not ignored) is ignored: by the
// built-in rules, or by the last of the user's patterns that matches it.
func (ig *Ignorer) decide(parts []string, dir bool) bool {
	if ig.builtin && BuiltinIgnored(parts[len(parts)-1]) {
		return true
	}
	for i := len(ig.rules) - 1; i >= 0; i-- {
		if ig.rules[i].match(parts, dir) {
			return !ig.rules[i].negate
		}
	}
	return false
}
