package contacts

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/providers/internal/storetest"
	"github.com/cradle-sync/cradle/providers/versions"
	"github.com/cradle-sync/cradle/repl"
)

const marta = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:marta\r\nFN:Marta Lopes\r\nN:Lopes;Marta;;;\r\nTEL;TYPE=CELL:+351 912 000 001\r\nEND:VCARD\r\n"
const joao = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:joao\r\nFN:João Silva\r\nN:Silva;João;;;\r\nEMAIL:joao@example.org\r\nEND:VCARD\r\n"

// TestVersionsOfCards: a card replaced on the desktop by the device's edit is kept with its file
// name and named by its FN; a card the desktop deleted is kept, from the device's file, on the
// computer as a card; restoring it puts it back in the address book, and the next sync back in
// the device's file.
func TestVersionsOfCards(t *testing.T) {
	ctx := context.Background()
	vdir, root, state := t.TempDir(), t.TempDir(), t.TempDir()
	vf := filepath.Join(root, filepath.FromSlash(DefaultDevicePath))
	storetest.WriteFile(t, vf, marta+joao)
	p := storetest.Open(t, "contacts", storetest.OpenFolderDevice(t, root), state, map[string]string{OptDesktop: vdir})
	sync := func() {
		t.Helper()
		rep := p.Sync(repl.Config{})
		for _, s := range rep.Skipped {
			t.Errorf("skipped %s: %v", s.Name, s.Err)
		}
	}
	sync()
	set := p.Inst.Versions
	list := func() []versions.Version {
		t.Helper()
		vs, err := set.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return vs
	}
	read := func(v versions.Version) string {
		t.Helper()
		rc, err := set.Open(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b)
	}

	// Marta's number changes on the phone: the address book's card is kept.
	time.Sleep(10 * time.Millisecond)
	storetest.WriteFile(t, vf, strings.Replace(marta, "001", "999", 1)+joao)
	sync()
	vs := list()
	if len(vs) != 1 || vs[0].Side != versions.Desktop || vs[0].Reason != versions.Update || vs[0].Label != "Marta Lopes" ||
		!strings.Contains(read(vs[0]), "+351 912 000 001") || !strings.HasSuffix(vs[0].Path, ".vcf") {
		t.Fatalf("after an edit on the phone, versions = %+v", vs)
	}

	// João is deleted in the address book: the phone's card is kept on the computer.
	var joaoFile string
	entries, _ := os.ReadDir(vdir)
	for _, e := range entries {
		if b, _ := os.ReadFile(filepath.Join(vdir, e.Name())); strings.Contains(string(b), "João") {
			joaoFile = e.Name()
		}
	}
	if joaoFile == "" {
		t.Fatal("João's card is not in the address book")
	}
	if err := os.Remove(filepath.Join(vdir, joaoFile)); err != nil {
		t.Fatal(err)
	}
	sync()
	if b, _ := os.ReadFile(vf); strings.Contains(string(b), "João") {
		t.Fatal("João is still in the phone's file")
	}
	var kept versions.Version
	for _, v := range list() {
		if v.Reason == versions.Delete {
			kept = v
		}
	}
	if kept.Side != versions.Device || kept.OnDevice || kept.Label != "João Silva" || kept.Path != joaoFile || !strings.Contains(read(kept), "joao@example.org") {
		t.Fatalf("the phone's deleted card was kept as %+v (%q)", kept, read(kept))
	}

	// Restored: a card in the address book again, and in the phone's file after the next sync.
	if _, err := set.Restore(ctx, kept, ""); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(vdir, joaoFile)); err != nil || !strings.Contains(string(b), "joao@example.org") {
		t.Fatalf("after the restore the address book's %s = %q, %v", joaoFile, b, err)
	}
	sync()
	if b, _ := os.ReadFile(vf); !strings.Contains(string(b), "joao@example.org") {
		t.Errorf("after a restore and a sync the phone's file lacks João:\n%s", b)
	}
}
