package repl_test

import (
	"os"
	"testing"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// restore puts a copy of c's handle file taken earlier back in place, as restoring the config
// folder from a backup does.
func (c *computer) restore(t *testing.T, backup []byte) {
	t.Helper()
	path := c.hf.Path()
	if err := c.hf.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	hf, err := repl.Open(path, repl.Options{})
	if err != nil {
		t.Fatalf("reopen the restored handle file: %v", err)
	}
	t.Cleanup(func() { hf.Close() })
	c.hf = hf
}

// backup copies c's handle file as it is now.
func (c *computer) backup(t *testing.T) []byte {
	t.Helper()
	path := c.hf.Path()
	if err := c.hf.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hf, err := repl.Open(path, repl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hf.Close() })
	c.hf = hf
	return b
}

// A config folder restored from a backup, while the device is also partnered with a second
// computer, must never mint again versions the device already knows: files made after the restore
// reach the device and the other computer, and no edit deletes or replaces another file.
func TestRestoredHandleFileMintsNewVersions(t *testing.T) {
	d := &device{store: memstore.New(memstore.Options{})}
	home, work := newComputer(t, "home"), newComputer(t, "work")
	putNow(t, home.desktop, "a.txt", "a")
	home.mustSync(t, d)
	work.mustSync(t, d)
	saved := home.backup(t)
	// After the backup: more files made at home, synced to the device and to work.
	putNow(t, home.desktop, "m.txt", "m")
	putNow(t, home.desktop, "n.txt", "n")
	home.mustSync(t, d)
	work.mustSync(t, d)
	// The config folder is restored; home then makes other new files (which take the versions
	// of m.txt and n.txt, if the restored file mints them again) and edits one.
	home.restore(t, saved)
	putNow(t, home.desktop, "b.txt", "made after the restore")
	putNow(t, home.desktop, "c.txt", "this one too")
	putNow(t, home.desktop, "a.txt", "a, edited after the restore")
	for range 2 {
		home.mustSync(t, d)
		work.mustSync(t, d)
	}
	want := map[string]string{"a.txt": "a, edited after the restore", "m.txt": "m", "n.txt": "n",
		"b.txt": "made after the restore", "c.txt": "this one too"}
	wantFiles(t, "home", home.desktop, want)
	wantFiles(t, "device", d.store, want)
	wantFiles(t, "work", work.desktop, want)
	// Later edits on either computer go everywhere and touch nothing else.
	putNow(t, work.desktop, "c.txt", "c, edited at work")
	putNow(t, home.desktop, "m.txt", "m, edited at home")
	for range 2 {
		work.mustSync(t, d)
		home.mustSync(t, d)
	}
	want["c.txt"], want["m.txt"] = "c, edited at work", "m, edited at home"
	wantFiles(t, "home", home.desktop, want)
	wantFiles(t, "device", d.store, want)
	wantFiles(t, "work", work.desktop, want)
}
