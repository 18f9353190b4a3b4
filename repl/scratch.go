package repl

import (
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// Scratch returns a copy of the handle file in a temporary file: whatever is done to the copy (a
// Forecast, a snapshot imported to see what it would change) leaves this one as it is. Close on
// the copy removes it.
func (hf *HandleFile) Scratch() (*HandleFile, error) {
	f, err := os.CreateTemp("", "cradle-scratch-*.repl")
	if err != nil {
		return nil, fmt.Errorf("copy handle file %s: %w", hf.path, err)
	}
	name := f.Name()
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
