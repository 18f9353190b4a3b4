package usbvm

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// Archive is the content of an initramfs: files, folders and symbolic links by their absolute path
// in the guest. It is written as a gzip-compressed cpio archive in the "newc" format that the Linux
// kernel unpacks into its root file system. Parent folders are created implicitly.
//
// An Archive is not safe for concurrent use.
type Archive struct {
	entries map[string]entry
}

type entry struct {
	mode   uint32 // type and permission bits, as in stat(2)
	data   []byte // for regular files with inline content
	src    string // for regular files copied from the host at write time
	size   int64
	target string // for symbolic links
}

// cpio mode bits (from stat(2); os.FileMode uses its own layout).
const (
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
)

// NewArchive returns an empty archive.
func NewArchive() *Archive {
	return &Archive{entries: make(map[string]entry)}
}

func cleanGuestPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("guest path %q is not absolute", p)
	}
	c := path.Clean(p)
	if c == "/" {
		return "", fmt.Errorf("guest path %q names the root", p)
	}
	return c, nil
}

// Dir adds a folder (and its parents).
func (a *Archive) Dir(p string) error {
	c, err := cleanGuestPath(p)
	if err != nil {
		return err
	}
	a.parents(c)
	if e, ok := a.entries[c]; ok && e.mode&0o170000 != modeDir {
		return fmt.Errorf("guest path %s is already a file", c)
	}
	a.entries[c] = entry{mode: modeDir | 0o755}
	return nil
}

func (a *Archive) parents(c string) {
	for d := path.Dir(c); d != "/"; d = path.Dir(d) {
		if _, ok := a.entries[d]; !ok {
			a.entries[d] = entry{mode: modeDir | 0o755}
		}
	}
}

// Bytes adds a regular file with the given content and permission bits.
func (a *Archive) Bytes(p string, data []byte, perm fs.FileMode) error {
	c, err := cleanGuestPath(p)
	if err != nil {
		return err
	}
	a.parents(c)
	a.entries[c] = entry{mode: modeRegular | uint32(perm.Perm()), data: data, size: int64(len(data))}
	return nil
}

// File adds the host file src as the regular file p, keeping its permission bits. Symbolic links
// are followed: the guest gets the content. The content is read when the archive is written.
func (a *Archive) File(p, src string) error {
	c, err := cleanGuestPath(p)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("add %s to the initramfs: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("add %s to the initramfs: not a regular file", src)
	}
	a.parents(c)
	a.entries[c] = entry{mode: modeRegular | uint32(fi.Mode().Perm()), src: src, size: fi.Size()}
	return nil
}

// Symlink adds a symbolic link p pointing to target.
func (a *Archive) Symlink(p, target string) error {
	c, err := cleanGuestPath(p)
	if err != nil {
		return err
	}
	a.parents(c)
	a.entries[c] = entry{mode: modeSymlink | 0o777, target: target, size: int64(len(target))}
	return nil
}

// Has reports whether the archive holds p.
func (a *Archive) Has(p string) bool {
	_, ok := a.entries[path.Clean(p)]
	return ok
}

// Paths returns the archive's paths in the order they are written (parents before children).
func (a *Archive) Paths() []string {
	ps := make([]string, 0, len(a.entries))
	for p := range a.entries {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// WriteGzip writes the archive as a gzip-compressed cpio newc archive. Several such archives
// concatenated form one initramfs (the kernel unpacks them in order; later files win).
func (a *Archive) WriteGzip(w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(zw, 1<<20)
	if err := a.writeCpio(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return nil
}

// writeCpio writes the uncompressed newc archive.
func (a *Archive) writeCpio(w io.Writer) error {
	var ino uint32 = 1
	for _, p := range a.Paths() {
		e := a.entries[p]
		name := strings.TrimPrefix(p, "/")
		if err := writeHeader(w, ino, e.mode, e.size, name); err != nil {
			return err
		}
		ino++
		switch {
		case e.mode&0o170000 == modeSymlink:
			if _, err := io.WriteString(w, e.target); err != nil {
				return err
			}
		case e.src != "":
			if err := copyExactly(w, e.src, e.size); err != nil {
				return err
			}
		default:
			if _, err := w.Write(e.data); err != nil {
				return err
			}
		}
		if err := pad(w, e.size); err != nil {
			return err
		}
	}
	if err := writeHeader(w, 0, 0, 0, "TRAILER!!!"); err != nil {
		return err
	}
	return nil
}

func copyExactly(w io.Writer, src string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err != nil {
		return fmt.Errorf("write initramfs: copy %s: %w", src, err)
	}
	if n != size {
		return fmt.Errorf("write initramfs: %s shrank from %d to %d bytes while it was archived", src, size, n)
	}
	return nil
}

// writeHeader writes one newc header and the name, padded to a multiple of four bytes.
func writeHeader(w io.Writer, ino, mode uint32, size int64, name string) error {
	if size > 0xFFFFFFFF {
		return fmt.Errorf("write initramfs: %s is too large for cpio (%d bytes)", name, size)
	}
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
	// rdevminor, namesize (with the NUL), check.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	if _, err := io.WriteString(w, hdr+name+"\x00"); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return pad(w, int64(len(hdr)+len(name)+1))
}

var zeros [4]byte

func pad(w io.Writer, n int64) error {
	if r := n % 4; r != 0 {
		if _, err := w.Write(zeros[:4-r]); err != nil {
			return fmt.Errorf("write initramfs: %w", err)
		}
	}
	return nil
}
