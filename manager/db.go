package manager

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DBFile is the name of the manager's database in the config folder: history, devices seen,
// conflict previews, device metadata bookkeeping.
const DBFile = "cradle.db"

// pidFile names the process that holds the config folder, for the "already running" message.
const pidFile = "cradle.pid"

var (
	bucketHistory  = []byte("history")
	bucketDevices  = []byte("devices")
	bucketPreviews = []byte("previews")
	bucketExports  = []byte("exports")
)

// db is the manager's bbolt file. bbolt's file lock makes it the lock of the whole config folder:
// a second Cradle process fails to open it and reports the first one's pid.
type db struct {
	b *bolt.DB
}

func openDB(dir string) (*db, error) {
	path := filepath.Join(dir, DBFile)
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 500 * time.Millisecond})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, &RunningError{PID: readPID(dir)}
	}
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("open %s: %w; make the config folder writable or choose another with --config", path, err)
		}
		return nil, fmt.Errorf("open %s: %w; if the file is damaged, move it aside (history and conflict previews are rebuilt)", path, err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketHistory, bucketDevices, bucketPreviews, bucketExports} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		b.Close()
		return nil, fmt.Errorf("write %s: %w", filepath.Join(dir, pidFile), err)
	}
	return &db{b: b}, nil
}

func readPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return n
}

func (d *db) close(dir string) error {
	os.Remove(filepath.Join(dir, pidFile))
	return d.b.Close()
}

// addSession appends a finished session to the history, keeping the last HistoryLimit.
func (d *db) addSession(s *Session) error {
	return d.b.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHistory)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		s.ID = seq
		v, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if err := b.Put(u64key(seq), v); err != nil {
			return err
		}
		if n := b.Stats().KeyN + 1; n > HistoryLimit {
			c := b.Cursor()
			for k, _ := c.First(); k != nil && n > HistoryLimit; k, _ = c.Next() {
				if err := c.Delete(); err != nil {
					return err
				}
				n--
			}
		}
		return nil
	})
}

// sessions returns up to n sessions, newest first, of the partnership id ("" for all).
func (d *db) sessions(id string, n int) ([]Session, error) {
	var out []Session
	err := d.b.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHistory).Cursor()
		for k, v := c.Last(); k != nil && (n <= 0 || len(out) < n); k, v = c.Prev() {
			var s Session
			if err := json.Unmarshal(v, &s); err != nil {
				continue // a record this version cannot read is skipped, not fatal
			}
			if id == "" || s.Partnership == id {
				out = append(out, s)
			}
		}
		return nil
	})
	return out, err
}

// lastSessions returns the newest finished session of each partnership.
func (d *db) lastSessions() (map[string]Session, error) {
	out := map[string]Session{}
	err := d.b.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHistory).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var s Session
			if json.Unmarshal(v, &s) != nil {
				continue
			}
			if _, ok := out[s.Partnership]; !ok {
				out[s.Partnership] = s
			}
		}
		return nil
	})
	return out, err
}

// knownDevice is what the database remembers of a device.
type knownDevice struct {
	Serial       string     `json:"serial"`
	Manufacturer string     `json:"manufacturer"`
	Model        string     `json:"model"`
	Kind         DeviceKind `json:"kind"`
	Label        string     `json:"label"`
	FirstSeen    time.Time  `json:"first_seen"`
	LastSeen     time.Time  `json:"last_seen"`
}

// seeDevice records a device as seen now and tells whether it was seen before.
func (d *db) seeDevice(k knownDevice) (bool, error) {
	known := false
	err := d.b.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		if v := b.Get([]byte(k.Serial)); v != nil {
			var old knownDevice
			if json.Unmarshal(v, &old) == nil {
				known = true
				k.FirstSeen = old.FirstSeen
			}
		}
		if k.FirstSeen.IsZero() {
			k.FirstSeen = k.LastSeen
		}
		v, err := json.Marshal(k)
		if err != nil {
			return err
		}
		return b.Put([]byte(k.Serial), v)
	})
	return known, err
}

func (d *db) knownDevices() ([]knownDevice, error) {
	var out []knownDevice
	err := d.b.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(_, v []byte) error {
			var k knownDevice
			if json.Unmarshal(v, &k) == nil {
				out = append(out, k)
			}
			return nil
		})
	})
	return out, err
}

// storedPreview is a conflict side's preview, valid while the side's size and time are the same.
type storedPreview struct {
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
	Preview  *Preview  `json:"preview"`
}

func previewKey(partnership, conflict, side string) []byte {
	return []byte(partnership + "\x00" + conflict + "\x00" + side)
}

func (d *db) putPreview(partnership, conflict, side string, p storedPreview) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return d.b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPreviews).Put(previewKey(partnership, conflict, side), v)
	})
}

func (d *db) preview(partnership, conflict, side string) (storedPreview, bool) {
	var p storedPreview
	found := false
	d.b.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketPreviews).Get(previewKey(partnership, conflict, side)); v != nil {
			found = json.Unmarshal(v, &p) == nil
		}
		return nil
	})
	return p, found
}

// resolutionSide is the key, among a conflict's previews, of why its last choice could not be
// carried out: it goes with the conflict's previews when the conflict goes.
const resolutionSide = "resolution-error"

// putResolutionError records why a session could not carry out the choice made for a conflict;
// an empty msg drops the record.
func (d *db) putResolutionError(partnership, conflict, msg string) error {
	return d.b.Update(func(tx *bolt.Tx) error {
		b, k := tx.Bucket(bucketPreviews), previewKey(partnership, conflict, resolutionSide)
		if msg == "" {
			return b.Delete(k)
		}
		return b.Put(k, []byte(msg))
	})
}

// resolutionError returns what putResolutionError recorded, or "".
func (d *db) resolutionError(partnership, conflict string) string {
	var msg string
	d.b.View(func(tx *bolt.Tx) error {
		msg = string(tx.Bucket(bucketPreviews).Get(previewKey(partnership, conflict, resolutionSide)))
		return nil
	})
	return msg
}

// prunePreviews drops the previews of a partnership's conflicts that are no longer pending
// (keep == nil drops them all).
func (d *db) prunePreviews(partnership string, keep map[string]bool) error {
	prefix := partnership + "\x00"
	return d.b.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPreviews)
		var drop [][]byte
		c := b.Cursor()
		for k, _ := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, _ = c.Next() {
			conflict, _, _ := strings.Cut(strings.TrimPrefix(string(k), prefix), "\x00")
			if !keep[conflict] {
				drop = append(drop, append([]byte(nil), k...))
			}
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// exportMark is what the manager remembers of the last device snapshot it wrote for a
// partnership: its object name on the device; or, with Local, that the device cannot keep the
// device metadata (see exportMeta), as found at Checked.
type exportMark struct {
	Object  string    `json:"object"`
	Local   bool      `json:"local,omitempty"`
	Checked time.Time `json:"checked,omitzero"`
}

func (d *db) exportMark(partnership string) (exportMark, bool) {
	var m exportMark
	found := false
	d.b.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketExports).Get([]byte(partnership)); v != nil {
			found = json.Unmarshal(v, &m) == nil
		}
		return nil
	})
	return m, found
}

func (d *db) putExportMark(partnership string, m exportMark) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return d.b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketExports).Put([]byte(partnership), v)
	})
}

// forget drops what the database holds about a removed partnership (its history stays).
func (d *db) forget(partnership string) error {
	if err := d.prunePreviews(partnership, nil); err != nil {
		return err
	}
	return d.b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketExports).Delete([]byte(partnership))
	})
}

func u64key(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}
