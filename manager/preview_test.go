package manager

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDryRunThenSync: a dry run lists every change a sync would make, with its direction, path,
// size and reason, changes nothing on either side, and the sync that follows makes exactly
// those changes.
func TestDryRunThenSync(t *testing.T) {
	w := newWorld(t)
	m := w.open(false)
	w.waitDevice(m)
	p := w.addDocs(m)
	for _, n := range []string{"a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt"} {
		writeFile(t, filepath.Join(w.desktop, n), "first "+n)
	}
	if _, err := m.Sync(ctxT(t), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	writeFile(t, filepath.Join(w.desktop, "new.txt"), "new on the desktop")
	writeFile(t, filepath.Join(w.desktop, "a.txt"), "a, edited on the desktop")
	writeFile(t, filepath.Join(w.phone, "Documents/b.txt"), "b, edited on the device")
	if err := os.Remove(filepath.Join(w.phone, "Documents/c.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(w.desktop, "d.txt"), filepath.Join(w.desktop, "d2.txt")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(w.desktop, "e.txt"), "e, the desktop's")
	writeFile(t, filepath.Join(w.phone, "Documents/e.txt"), "e, the device's")
	snapshot := func() map[string]string {
		out := map[string]string{}
		for _, dir := range []string{w.desktop, w.phone, w.config} {
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() && !strings.HasSuffix(p, ".log") {
					fi, _ := d.Info()
					out[p] = readFile(t, p) + fi.ModTime().String()
				}
				return nil
			})
		}
		return out
	}
	before := snapshot()
	plans, err := m.DryRun(ctxT(t), SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after := snapshot(); len(after) != len(before) {
		t.Errorf("the dry run changed the files: %d before, %d after", len(before), len(after))
	} else {
		for k, v := range before {
			if after[k] != v && !strings.Contains(k, "cradle.db") {
				t.Errorf("the dry run changed %s", k)
			}
		}
	}
	if len(plans) != 1 || plans[0].Partnership != p.ID || plans[0].Error != "" || plans[0].MassDelete != nil {
		t.Fatalf("DryRun = %+v", plans)
	}
	var got []string
	for _, c := range plans[0].Changes {
		got = append(got, c.Action+" "+c.Direction+" "+c.Path+" "+c.Cause+": "+c.Reason)
	}
	slices.Sort(got)
	want := []string{
		"conflict to-desktop e.txt : changed on both sides: waits for you to choose",
		"create to-device new.txt : new on this computer",
		"delete to-desktop c.txt delete: deleted on the device",
		"rename to-device d2.txt : renamed on this computer (was d.txt)",
		"update to-desktop b.txt update: changed on the device",
		"update to-device a.txt update: changed on this computer",
	}
	if !slices.Equal(got, want) {
		t.Errorf("DryRun changes:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, c := range plans[0].Changes {
		if c.Path == "new.txt" && c.Size != int64(len("new on the desktop")) {
			t.Errorf("the new file's size is %d", c.Size)
		}
	}

	ss, err := m.Sync(ctxT(t), SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := ss[0]
	if s.ToDevice != (Counts{Created: 1, Updated: 1, Renamed: 1}) || s.ToDesktop != (Counts{Updated: 1, Deleted: 1}) || s.Conflicts != 1 {
		t.Errorf("the sync after the dry run did %+v to the device, %+v to the desktop, %d conflicts", s.ToDevice, s.ToDesktop, s.Conflicts)
	}
	if plans, _ := m.DryRun(ctxT(t), SyncOptions{}); len(plans[0].Changes) != 0 {
		t.Errorf("after the sync, a dry run still lists %+v", plans[0].Changes)
	}
}

// TestDryRunMassDelete: a dry run says when the sync would stop at the mass-delete guard, and
// the sync stops with the same numbers in the partnership's status.
func TestDryRunMassDelete(t *testing.T) {
	w := newWorld(t)
	m := w.open(false)
	w.waitDevice(m)
	p := w.addDocs(m)
	for _, n := range []string{"a", "b", "c"} {
		writeFile(t, filepath.Join(w.desktop, n+".txt"), n)
	}
	if _, err := m.Sync(ctxT(t), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(w.desktop, "a.txt"))
	os.Remove(filepath.Join(w.desktop, "b.txt"))
	plans, err := m.DryRun(ctxT(t), SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	md := plans[0].MassDelete
	if md == nil || md.Side != "device" || md.Deletes != 2 || md.Items != 3 || len(plans[0].Changes) != 2 {
		t.Fatalf("DryRun of 2 of 3 deleted = %+v (%+v)", plans[0], md)
	}
	if plans, _ := m.DryRun(ctxT(t), SyncOptions{AllowMassDelete: true}); plans[0].MassDelete != nil {
		t.Errorf("a dry run allowed past the guard still reports it")
	}
	ss, _ := m.Sync(ctxT(t), SyncOptions{})
	if ss[0].Outcome != OutcomeFailed {
		t.Errorf("the sync = %+v, want it stopped", ss[0])
	}
	var st Status
	for _, s := range m.Status() {
		if s.ID == p.ID {
			st = s
		}
	}
	if st.MassDelete == nil || *st.MassDelete != *md {
		t.Errorf("status after the guard stopped the sync: %+v, want %+v", st.MassDelete, md)
	}
	ss, _ = m.Sync(ctxT(t), SyncOptions{AllowMassDelete: true})
	if ss[0].ToDevice.Deleted != 2 {
		t.Errorf("allowed: %+v", ss[0])
	}
	for _, s := range m.Status() {
		if s.ID == p.ID && s.MassDelete != nil {
			t.Errorf("status after the allowed sync still says %+v", s.MassDelete)
		}
	}
}
