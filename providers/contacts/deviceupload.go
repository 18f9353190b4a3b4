package contacts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/cradle-sync/cradle/providers"
)

// Rewriting the device's contacts file (see DeviceFile): the pieces of the new file, the upload
// beside the old one and the swap, and the journal in the state folder that recover reads to
// finish or undo a rewrite an unplug interrupted.

// piece is one stretch of the file to write: bytes kept or new, and a UID to write into a card
// that has none.
type piece struct {
	raw []byte
	uid string
}

// piece returns the segment as it is to be written back: verbatim, with its derived ID written in
// as UID when it is a card without one.
func (d *devSeg) piece() piece {
	if d.card != nil && d.needUID {
		return piece{raw: d.raw, uid: d.handle}
	}
	return piece{raw: d.raw}
}

// rewrite writes the file made of pieces and makes it the store's content. Called with s.mu
// held.
func (s *DeviceFile) rewrite(ctx context.Context, pieces []piece) error {
	if err := s.upload(ctx, joinPieces(pieces)); err != nil {
		s.loaded = false // read the device again before anything else
		return err
	}
	if err := s.ids.save(); err != nil {
		return err
	}
	if len(s.pending) > 0 {
		return s.clearPending() // the file written had them (s.file is the device's with them)
	}
	return nil
}

// joinPieces returns the file made of pieces.
func joinPieces(pieces []piece) []byte {
	var b bytes.Buffer
	for _, p := range pieces {
		raw := p.raw
		if p.uid != "" {
			raw = insertUID(raw, p.uid)
		}
		if b.Len() > 0 && !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
			b.WriteString("\r\n")
		}
		b.Write(raw)
	}
	return b.Bytes()
}

// insertUID adds a UID line before a card's END:VCARD line, keeping every other byte.
func insertUID(raw []byte, uid string) []byte {
	eol := "\n"
	if bytes.Contains(raw, []byte("\r\n")) {
		eol = "\r\n"
	}
	body := bytes.TrimRight(raw, "\r\n \t")
	i := bytes.LastIndexByte(body, '\n') + 1
	out := make([]byte, 0, len(raw)+len(uid)+8)
	out = append(out, raw[:i]...)
	out = append(out, "UID:"+strings.NewReplacer(`\`, `\\`, ";", `\;`).Replace(uid)+eol...)
	return append(out, raw[i:]...)
}

// journal records a rewrite of the device file in progress.
type journal struct {
	Storage     device.StorageID `json:"storage"`
	Path        string           `json:"path"`
	HadPrevious bool             `json:"had_previous"` // the file existed before the rewrite
	NewSize     int64            `json:"new_size"`
	NewSHA256   string           `json:"new_sha256"`
	Started     time.Time        `json:"started"`
}

func (s *DeviceFile) journalPaths() (string, string) {
	return filepath.Join(s.stateDir, "device-write.json"), filepath.Join(s.stateDir, "device-previous.vcf")
}

// sideNames are the names of the new file while it is uploaded and of the old one while they
// are swapped, beside the contacts file. They are not hidden (some devices do not show dot-files
// over MTP) and do not end in ".vcf" (a contacts app importing a folder skips them).
func (s *DeviceFile) sideNames() (newPath, oldPath string) {
	return s.path + ".cradle-new", s.path + ".cradle-old"
}

// upload replaces the device file with data. Called with s.mu held.
func (s *DeviceFile) upload(ctx context.Context, data []byte) error {
	jpath, prevPath := s.journalPaths()
	// Before a device that cannot rename is left without the file (delete, then create), the
	// previous content goes to the state folder with a journal saying so. A swap by renames needs
	// neither: the old file stays whole on the device, beside the new one, until the swap is done.
	savePrevious := func() error {
		if s.stateDir == "" || !s.exists {
			return nil
		}
		if err := os.MkdirAll(s.stateDir, 0o700); err != nil {
			return fmt.Errorf("save the previous contacts file before replacing it: %w", providers.MapFSError(err))
		}
		if err := fsutil.WriteFileAtomic(prevPath, s.base, atomically(prevPath, time.Time{})); err != nil {
			return fmt.Errorf("save the previous contacts file before replacing it: %w", providers.MapFSError(err))
		}
		sum := sha256.Sum256(data)
		jb, _ := json.Marshal(journal{Storage: s.storage, Path: s.path, HadPrevious: true, NewSize: int64(len(data)),
			NewSHA256: hex.EncodeToString(sum[:]), Started: time.Now().UTC()})
		if err := fsutil.WriteFileAtomic(jpath, jb, atomically(jpath, time.Time{})); err != nil {
			return fmt.Errorf("save the write journal: %w", providers.MapFSError(err))
		}
		return nil
	}
	newPath, oldPath := s.sideNames()
	mtime := time.Now()
	swapped := false
	if !s.noRename && s.exists {
		if err := s.removeIfPresent(ctx, newPath); err != nil {
			return err
		}
		if _, err := s.dev.Create(ctx, s.storage, newPath, int64(len(data)), mtime, bytes.NewReader(data)); err != nil {
			return fmt.Errorf("upload contacts file to %s: %w", s.where(), devErr(err))
		}
		if err := s.removeIfPresent(ctx, oldPath); err != nil {
			return err
		}
		err := s.dev.Rename(ctx, s.storage, s.path, oldPath)
		switch {
		case errors.Is(err, device.ErrUnsupported):
			s.noRename = true
			if err := s.removeIfPresent(ctx, newPath); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("replace contacts file %s: %w", s.where(), devErr(err))
		default:
			if err := s.dev.Rename(ctx, s.storage, newPath, s.path); err != nil {
				// Put the old file back; the journal restores it if even that fails.
				_ = s.dev.Rename(ctx, s.storage, oldPath, s.path)
				return fmt.Errorf("replace contacts file %s: %w", s.where(), devErr(err))
			}
			if err := s.dev.Delete(ctx, s.storage, oldPath); err != nil && !errors.Is(err, device.ErrNotFound) {
				s.log("contacts file %s: cannot remove the old copy %s: %v", s.where(), oldPath, err)
			}
			swapped = true
		}
	}
	if !swapped {
		if err := savePrevious(); err != nil {
			return err
		}
		if s.exists {
			if err := s.dev.Delete(ctx, s.storage, s.path); err != nil && !errors.Is(err, device.ErrNotFound) {
				return fmt.Errorf("replace contacts file %s: %w", s.where(), devErr(err))
			}
		}
		if _, err := s.dev.Create(ctx, s.storage, s.path, int64(len(data)), mtime, bytes.NewReader(data)); err != nil {
			return fmt.Errorf("write contacts file %s: %w", s.where(), devErr(err))
		}
	}
	obj, err := s.dev.Stat(ctx, s.storage, s.path)
	if err != nil {
		return fmt.Errorf("check contacts file %s after writing: %w", s.where(), devErr(err))
	}
	if obj.Size != int64(len(data)) {
		return fmt.Errorf("contacts file %s has %d bytes after writing %d: the device did not store it whole; sync again", s.where(), obj.Size, len(data))
	}
	if s.stateDir != "" {
		if err := os.Remove(jpath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("clear the write journal: %w", providers.MapFSError(err))
		}
		_ = os.Remove(prevPath)
	}
	s.exists, s.loaded, s.stat = true, true, obj
	s.base = data
	s.setContent(data, obj.ModTime)
	return nil
}

func (s *DeviceFile) removeIfPresent(ctx context.Context, p string) error {
	if err := s.dev.Delete(ctx, s.storage, p); err != nil && !errors.Is(err, device.ErrNotFound) {
		return fmt.Errorf("remove %s on the device: %w", p, devErr(err))
	}
	return nil
}

// recover finishes what an interrupted rewrite left, once per session: when the device has no
// contacts file but the old one is still beside it (a swap cut between its renames) it is put
// back; when a delete-and-create was cut, the previous content saved in the state folder is put
// back. Side files left over are removed. Called with s.mu held.
func (s *DeviceFile) recover(ctx context.Context) error {
	jpath, prevPath := s.journalPaths()
	var j *journal
	if s.stateDir != "" {
		jb, err := os.ReadFile(jpath)
		switch {
		case err == nil:
			j = &journal{}
			if err := json.Unmarshal(jb, j); err != nil || j.Path != s.path || j.Storage != s.storage {
				s.log("ignoring a contacts write journal that does not match %s (%v)", s.where(), err)
				j = nil
			}
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("read the contacts write journal: %w", providers.MapFSError(err))
		}
	}
	newPath, oldPath := s.sideNames()
	_, err := s.dev.Stat(ctx, s.storage, s.path)
	switch {
	case err == nil:
		// The file is there, whole: the old one or the new one. The next read tells.
	case !errors.Is(err, device.ErrNotFound):
		return fmt.Errorf("contacts file %s: %w", s.where(), devErr(err))
	default:
		if _, err := s.dev.Stat(ctx, s.storage, oldPath); err == nil {
			if err := s.dev.Rename(ctx, s.storage, oldPath, s.path); err != nil {
				return fmt.Errorf("contacts file %s is missing after an interrupted write; putting back %s failed: %w", s.where(), oldPath, devErr(err))
			}
			s.log("contacts file %s was put back after an interrupted write", s.where())
			break
		}
		if j == nil || !j.HadPrevious {
			break
		}
		prev, err := os.ReadFile(prevPath)
		if err != nil {
			return fmt.Errorf("contacts file %s is missing after an interrupted write and the saved copy %s cannot be read: %w", s.where(), prevPath, providers.MapFSError(err))
		}
		if _, err := s.dev.Create(ctx, s.storage, s.path, int64(len(prev)), time.Now(), bytes.NewReader(prev)); err != nil {
			return fmt.Errorf("restore contacts file %s after an interrupted write (the saved copy is %s): %w", s.where(), prevPath, devErr(err))
		}
		s.log("contacts file %s was restored after an interrupted write", s.where())
	}
	for _, p := range []string{newPath, oldPath} {
		if err := s.removeIfPresent(ctx, p); err != nil {
			return err
		}
	}
	if s.stateDir != "" {
		if err := os.Remove(jpath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("clear the write journal: %w", providers.MapFSError(err))
		}
		_ = os.Remove(prevPath)
	}
	return nil
}
