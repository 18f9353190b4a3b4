package repl

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// scratchInfix names the scratch copies beside a handle file: "<file>.scratch-<pid>-<random>".
const scratchInfix = ".scratch-"

// Scratch returns a copy of the handle file beside it (on the same disk: a large handle file is
// not copied into memory, as a temporary folder on tmpfs would): whatever is done to the copy (a
// Forecast, a snapshot imported to see what it would change) leaves this one as it is. Close on
// the copy removes it; copies a killed process left are removed by the next Scratch.
func (hf *HandleFile) Scratch() (*HandleFile, error) {
	removeStaleScratches(hf.path)
	name := hf.path + scratchInfix + strconv.Itoa(os.Getpid()) + "-" + rand.Text()[:8]
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("copy handle file %s: %w", hf.path, err)
	}
	err = hf.view(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(f)
		return err
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return nil, fmt.Errorf("copy handle file %s: %w", hf.path, err)
	}
	s, err := Open(name, Options{NoSync: true})
	if err != nil {
		os.Remove(name)
		return nil, err
	}
	s.scratch = true
	return s, nil
}

// removeStaleScratches removes the scratch copies of the handle file at path whose process no
// longer runs.
func removeStaleScratches(path string) {
	dir, base := filepath.Split(path)
	entries, err := os.ReadDir(filepath.Clean(dir))
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), base+scratchInfix)
		if !ok {
			continue
		}
		id, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(id)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
