package fsstore

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/cradle-sync/cradle/repl"
)

// SeenSet remembers every item a device store has seen, with its last stamp, so that an item
// deleted on the device can be reported as still there (a "kept" item): its deletion then never
// propagates. The files provider uses it for ignore-device-deletes, the photos provider for
// pictures freed from the device. It lives in a file in the partnership's state folder: a log
// of additions and removals, compacted after each full enumeration.
//
// Concurrency: safe for use from several goroutines.
type SeenSet struct {
	path string
	mu   sync.Mutex
	m    map[string]repl.Stamp
	log  *os.File // append handle, opened lazily
}

// OpenSeenSet loads the set kept in the file path (a missing file is an empty set).
func OpenSeenSet(path string) (*SeenSet, error) {
	s := &SeenSet{path: path, m: map[string]repl.Stamp{}}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		switch line[0] {
		case '-':
			delete(s.m, line[1:])
		case '+':
			h, st, ok := parseSeen(line[1:])
			if ok {
				s.m[h] = st
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return s, nil
}

// parseSeen reads "kind size mtime hash\thandle".
func parseSeen(s string) (string, repl.Stamp, bool) {
	head, handle, ok := strings.Cut(s, "\t")
	if !ok || handle == "" {
		return "", repl.Stamp{}, false
	}
	f := strings.Fields(head)
	if len(f) < 3 {
		return "", repl.Stamp{}, false
	}
	k, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	mt, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return "", repl.Stamp{}, false
	}
	st := repl.Stamp{Kind: repl.Kind(k), Size: size, ModTime: mt}
	if len(f) > 3 && f[3] != "-" {
		st.Hash = f[3]
	}
	return handle, st, true
}

func formatSeen(h string, st repl.Stamp) string {
	hash := st.Hash
	if hash == "" {
		hash = "-"
	}
	return fmt.Sprintf("+%d %d %d %s\t%s\n", st.Kind, st.Size, st.ModTime, hash, h)
}

// Get returns the stamp last seen for handle.
func (s *SeenSet) Get(handle string) (repl.Stamp, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[handle]
	return st, ok
}

// Len returns how many items the set holds.
func (s *SeenSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Handles returns the handles in the set, sorted.
func (s *SeenSet) Handles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for h := range s.m {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// Add records an item as seen with its stamp (appended to the log when new or changed).
func (s *SeenSet) Add(handle string, st repl.Stamp) error {
	if strings.ContainsAny(handle, "\n") {
		return nil // cannot be stored; such names never reach a store anyway
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[handle]; ok && old == st {
		return nil
	}
	s.m[handle] = st
	return s.appendLocked(formatSeen(handle, st))
}

// Remove forgets an item (its deletion was applied on purpose).
func (s *SeenSet) Remove(handle string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[handle]; !ok {
		return nil
	}
	delete(s.m, handle)
	return s.appendLocked("-" + handle + "\n")
}

func (s *SeenSet) appendLocked(line string) error {
	if s.log == nil {
		f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("write %s: %w", s.path, err)
		}
		s.log = f
	}
	if _, err := s.log.WriteString(line); err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	return nil
}

// Compact rewrites the file with the set as it stands.
func (s *SeenSet) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for h, st := range s.m {
		b.WriteString(formatSeen(h, st))
	}
	if s.log != nil {
		s.log.Close()
		s.log = nil
	}
	if err := fsutil.WriteFileAtomic(s.path, []byte(b.String()), fsutil.WriteOptions{TempName: TempName()}); err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	return nil
}

// Close flushes and closes the log.
func (s *SeenSet) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return nil
	}
	err := s.log.Sync()
	if cerr := s.log.Close(); err == nil {
		err = cerr
	}
	s.log = nil
	return err
}
