//go:build usbvm

package usbvm

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The real-USB end-to-end tests: `make test-usb` runs them (go test -tags usbvm). Each host
// controller boots one guest that runs every scenario's guest test against QEMU's usb-mtp device;
// QEMU dying or hanging fails the run.

var (
	harnessOnce sync.Once
	harness     *Harness
	harnessErr  error
	consolePath string
	tempWork    string // the work folder when the test made it: removed after a passing run
)

func TestMain(m *testing.M) {
	code := m.Run()
	if tempWork != "" {
		if code == 0 {
			os.RemoveAll(tempWork)
		} else {
			fmt.Fprintf(os.Stderr, "usbvm: the guest consoles and QEMU logs are kept in %s\n", tempWork)
		}
	}
	os.Exit(code)
}

// testHarness builds the guest once. Guest consoles and host actions go to console.log in the
// work folder (CRADLE_USBVM_WORK, default a temporary folder removed after a passing run), and
// to stderr as well with CRADLE_USBVM_VERBOSE=1. CRADLE_USBVM_TRACE=usb_mtp_*,usb_xhci_* enables
// QEMU trace events, written to qemu.log in each run's folder.
func testHarness(t *testing.T) *Harness {
	t.Helper()
	harnessOnce.Do(func() {
		work := os.Getenv("CRADLE_USBVM_WORK")
		if work == "" {
			work, harnessErr = os.MkdirTemp("", "cradle-usbvm-*")
			if harnessErr != nil {
				return
			}
			tempWork = work
		}
		if harnessErr = os.MkdirAll(work, 0o755); harnessErr != nil {
			return
		}
		consolePath = filepath.Join(work, "console.log")
		f, err := os.Create(consolePath)
		if err != nil {
			harnessErr = err
			return
		}
		var log io.Writer = f
		if os.Getenv("CRADLE_USBVM_VERBOSE") != "" {
			log = io.MultiWriter(f, os.Stderr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		// The guest gets the cradle command too, for the scenarios that run it.
		harness, harnessErr = NewHarness(ctx, work, HarnessOptions{Programs: map[string]string{"/usbvm/cradle": "."}, UMTP: true}, log)
		if harnessErr == nil && os.Getenv("CRADLE_USBVM_TRACE") != "" {
			harness.Trace = strings.Split(os.Getenv("CRADLE_USBVM_TRACE"), ",")
		}
	})
	if harnessErr != nil {
		t.Fatalf("build the guest: %v", harnessErr)
	}
	t.Logf("guest consoles: %s", consolePath)
	return harness
}

// fixtureTime is the modification time of fixtures the host writes.
var fixtureTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

func writeFixture(dir, scenarioDir, name string, size int64) error {
	p := filepath.Join(dir, name)
	if err := WriteContentFile(p, scenarioDir+"/"+filepath.ToSlash(name), size); err != nil {
		return err
	}
	return os.Chtimes(p, fixtureTime, fixtureTime)
}

// checkFiles verifies files on the host side by content hash: name -> size, or -1 for "must not
// exist".
func checkFiles(dir, scenarioDir string, want map[string]int64) error {
	var errs []string
	for name, size := range want {
		p := filepath.Join(dir, filepath.FromSlash(name))
		f, err := os.Open(p)
		if size < 0 {
			if err == nil {
				f.Close()
				errs = append(errs, fmt.Sprintf("%s exists, want it absent", name))
			}
			continue
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		h, n, err := HashReader(f)
		f.Close()
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if want := ContentHash(path.Join(scenarioDir, name), size); h != want || n != size {
			errs = append(errs, fmt.Sprintf("%s: %d bytes with hash %s, want %d bytes with hash %s", name, n, h, size, want))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("host side: %s", strings.Join(errs, "; "))
	}
	return nil
}

// checkContent verifies files on the host side by content hash, each against the content its
// writer generated: path -> content name and size.
func checkContent(dir string, want map[string]struct {
	name string
	size int64
}) error {
	var errs []string
	for p, w := range want {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		h, n, err := HashReader(f)
		f.Close()
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if h != ContentHash(w.name, w.size) || n != w.size {
			errs = append(errs, fmt.Sprintf("%s: %d bytes with hash %s, want %d bytes of %s", p, n, h, w.size, w.name))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("host side: %s", strings.Join(errs, "; "))
	}
	return nil
}

// noLeftovers checks that cradle left nothing the device does not show (QEMU hides names that
// start with a dot) in the scenario's folder dir or in .cradle at the device's root: no rename
// probe, no partial upload, no device metadata. (QEMU refuses to make .cradle once it exists, so
// an empty one may stay: nothing can be written into it.)
func noLeftovers(dir string) error {
	var found []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".cradle-") {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	meta, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".cradle", "*"))
	if found = append(found, meta...); len(found) > 0 {
		return fmt.Errorf("host side: cradle left objects the device does not show: %s", strings.Join(found, ", "))
	}
	return nil
}

// Scenarios, in the order the guest runs them.
var scenarios = []Scenario{
	{
		Name: "TestTransport",
		Setup: func(dir string) error {
			if err := writeFixture(dir, "Transport", "big.bin", 24<<20+100); err != nil {
				return err
			}
			return writeFixture(dir, "Transport", "aligned.bin", 2<<20-12)
		},
		Check: func(dir string) error {
			return checkFiles(dir, "Transport", map[string]int64{
				"big.bin": 24<<20 + 100, "aligned.bin": 2<<20 - 12,
				"sent-chunk.bin": 1<<20 + 1, "sent-odd.bin": 5<<20 + 333, "sent-tiny.txt": 5,
				"event.txt": 42,
			})
		},
	},
	{Name: "TestDiagnosis"},
	{
		Name: "TestConformance",
		Setup: func(dir string) error {
			for name, size := range map[string]int64{"a.txt": 5, "b.bin": 3<<20 + 7, "empty.txt": 0, ".hidden": 10, "sub/deep/c.txt": 11} {
				if err := writeFixture(dir, "Conformance", name, size); err != nil {
					return err
				}
			}
			return nil
		},
		Check: func(dir string) error {
			if err := checkFiles(filepath.Dir(dir), "", map[string]int64{"Conformance-root.bin": 700<<10 + 3}); err != nil {
				return err
			}
			return checkFiles(dir, "Conformance", map[string]int64{
				"a.txt": 5, "b.bin": 3<<20 + 7, ".hidden": 10,
				"empty.txt": -1, "sub/deep/c.txt": -1, "sub/deep/e.bin": -1, "sub/deep": -1,
			})
		},
	},
	{
		Name: "TestNewFolders",
		Setup: func(dir string) error {
			if err := os.Mkdir(filepath.Join(dir, "Docs-old"), 0o755); err != nil {
				return err
			}
			return writeFixture(dir, "NewFolders", "pre-existing.txt", 9)
		},
		Check: func(dir string) error {
			if err := noLeftovers(dir); err != nil {
				return err
			}
			if fi, err := os.Stat(filepath.Join(dir, "made", "here", "and", "there")); err != nil || !fi.IsDir() {
				return fmt.Errorf("host side: made/here/and/there is not a folder: %v", err)
			}
			return checkFiles(dir, "NewFolders", map[string]int64{"one/a.bin": 1<<20 + 3, "two/levels/b.bin": 300<<10 + 1, "one/again/c.txt": 3,
				"pre": 7, "Docs/x.txt": 4, "pre-existing.txt": 9})
		},
	},
	{
		Name:  "TestEvents",
		Setup: func(dir string) error { return writeFixture(dir, "Events", "old.txt", 10) },
		Check: func(dir string) error {
			return checkFiles(dir, "Events", map[string]int64{"arrived.txt": 1234, "old.txt": -1})
		},
	},
	{Name: "TestHotplug"},
	{
		Name: "TestCradle",
		Setup: func(dir string) error {
			for name, size := range map[string]int64{"Docs/d.bin": 2<<20 + 3, "Docs/old.txt": 10} {
				if err := writeFixture(dir, "Cradle", name, size); err != nil {
					return err
				}
			}
			return nil
		},
		Check: func(dir string) error {
			type c = struct {
				name string
				size int64
			}
			if err := noLeftovers(dir); err != nil {
				return err
			}
			return checkContent(filepath.Join(dir, "Docs"), map[string]c{
				"a.txt": {"desk/a.txt", 5}, "sub/b.bin": {"desk/sub/b.bin", 700<<10 + 1},
				"while-away.txt": {"desk/while-away.txt", 77},
				"d.bin":          {"Cradle/Docs/d.bin", 2<<20 + 3}, "old.txt": {"Cradle/Docs/old.txt", 10},
				"from-host.bin": {"Cradle/Docs/from-host.bin", 12345},
			})
		},
	},
	{
		Name: "TestCradleUnplug",
		// QEMU 7.2's usb-ehci has crashed (SIGSEGV) when the device left in the middle of this
		// upload and came back.
		HCDs:  []string{XHCI},
		Setup: func(dir string) error { return writeFixture(dir, "CradleUnplug", "Docs/small.txt", 10) },
		Check: func(dir string) error {
			type c = struct {
				name string
				size int64
			}
			if err := noLeftovers(dir); err != nil {
				return err
			}
			return checkContent(filepath.Join(dir, "Docs"), map[string]c{
				"big.bin": {"desk/big.bin", 160<<20 + 1}, "small.txt": {"CradleUnplug/Docs/small.txt", 10},
			})
		},
	},
	// The scenarios that pull the device in the middle of a transfer come last: QEMU 7.2's
	// usb-ehci crashes (SIGSEGV in a main-loop callback) in a large upload that follows such an
	// unplug and the device's return, so behind it nothing is uploaded after TestUnplug.
	{
		Name:  "TestUnplug",
		Setup: func(dir string) error { return writeFixture(dir, "Unplug", "source.bin", 48<<20) },
		Check: func(dir string) error {
			return checkFiles(dir, "Unplug", map[string]int64{"source.bin": 48 << 20})
		},
	},
	// uMTP-Responder, a second MTP implementation, as a real USB gadget in the guest: its storage
	// is the guest's own folder, so the guest test prepares and checks it itself.
	{Name: "TestUMTP", HCDs: []string{UMTP}},
	{
		Name: "TestUnplugUpload",
		HCDs: []string{XHCI},
		Check: func(dir string) error {
			if err := noLeftovers(dir); err != nil {
				return err
			}
			return checkFiles(dir, "UnplugUpload", map[string]int64{"upload.bin": 64<<20 + 5})
		},
	},
}

// selected returns the scenarios and host controllers to run: every one, or those named in
// CRADLE_USBVM_SCENARIOS (TestCradle,TestUnplug) and CRADLE_USBVM_HCDS (qemu-xhci,usb-ehci),
// for working on one scenario.
func selected(t *testing.T) ([]Scenario, []string) {
	ss, hcds := scenarios, []string{XHCI, EHCI, UMTP}
	if names := os.Getenv("CRADLE_USBVM_SCENARIOS"); names != "" {
		ss = nil
		for _, n := range strings.Split(names, ",") {
			i := slices.IndexFunc(scenarios, func(s Scenario) bool { return s.Name == strings.TrimSpace(n) })
			if i < 0 {
				t.Fatalf("CRADLE_USBVM_SCENARIOS names %q, which is no scenario", n)
			}
			ss = append(ss, scenarios[i])
		}
	}
	if names := os.Getenv("CRADLE_USBVM_HCDS"); names != "" {
		hcds = nil
		for _, n := range strings.Split(names, ",") {
			if n = strings.TrimSpace(n); n != XHCI && n != EHCI && n != UMTP {
				t.Fatalf("CRADLE_USBVM_HCDS names %q; the device models are %s, %s and %s", n, XHCI, EHCI, UMTP)
			}
			hcds = append(hcds, n)
		}
	}
	return ss, hcds
}

func TestUSB(t *testing.T) {
	h := testHarness(t)
	scenarios, hcds := selected(t)
	for _, hcd := range hcds {
		t.Run(hcd, func(t *testing.T) {
			root := t.TempDir()
			// QEMU runs as this user and must be able to write the folder.
			ctx := context.Background()
			results, res, err := h.RunScenarios(ctx, hcd, root, scenarios, 15*time.Minute)
			if err != nil {
				t.Fatalf("machine on %s: %v", hcd, err)
			}
			t.Logf("guest ran in %s, %d control calls", res.Elapsed.Round(time.Millisecond), res.Calls)
			for _, s := range scenarios {
				if !s.On(hcd) {
					continue
				}
				t.Run(s.Dir(), func(t *testing.T) {
					r, ok := results[s.Name]
					if !ok {
						t.Fatalf("guest test %s did not run", s.Name)
					}
					if !r.Passed {
						t.Errorf("guest test %s failed:\n%s", s.Name, r.Output)
					}
					if s.Check != nil {
						if err := s.Check(filepath.Join(root, s.Dir())); err != nil {
							t.Error(err)
						}
					}
				})
			}
		})
	}
}

// TestArchiveCpio unpacks an archive with the system's cpio and compares.
func TestArchiveCpio(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "host.bin")
	if err := os.WriteFile(src, []byte("from the host\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	a := NewArchive()
	for _, err := range []error{
		a.Bytes("/etc/motd", []byte("hello\n"), 0o644),
		a.Bytes("/odd/len/x", []byte("12345"), 0o600),
		a.Bytes("/empty", nil, 0o644),
		a.File("/bin/tool", src),
		a.Symlink("/bin/sh", "busybox"),
		a.Dir("/proc"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Bytes("relative", nil, 0o644); err == nil {
		t.Errorf("Bytes(relative path) = nil error, want one")
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(a.WriteGzip(pw)) }()
	cmd := exec.Command("sh", "-c", "gzip -dc | cpio -idm --quiet --no-absolute-filenames")
	cmd.Dir = out
	cmd.Stdin = pr
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gzip | cpio: %v: %s", err, b)
	}
	for p, want := range map[string]string{"etc/motd": "hello\n", "odd/len/x": "12345", "empty": "", "bin/tool": "from the host\n"} {
		got, err := os.ReadFile(filepath.Join(out, p))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v, want %q", p, got, err, want)
		}
	}
	for p, want := range map[string]os.FileMode{"etc/motd": 0o644, "odd/len/x": 0o600, "bin/tool": 0o750, "proc": os.ModeDir | 0o755, "odd/len": os.ModeDir | 0o755} {
		fi, err := os.Lstat(filepath.Join(out, p))
		if err != nil || fi.Mode() != want {
			t.Errorf("mode of %s = %v, %v, want %v", p, fi.Mode(), err, want)
		}
	}
	if l, err := os.Readlink(filepath.Join(out, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh -> %q, %v, want busybox", l, err)
	}
}

// TestQMP unplugs and plugs QEMU's usb-mtp on a machine that never boots (-S).
func TestQMP(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "q.sock")
	cmd := exec.Command("qemu-system-x86_64", "-S", "-accel", "tcg", "-nodefaults", "-display", "none",
		"-qmp", "unix:"+sock+",server=on,wait=off",
		"-device", "qemu-xhci,id=hcd", "-device", "usb-mtp,id=mtp0,bus=hcd.0,rootdir="+dir+",readonly=off")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	q, err := DialQMP(ctx, sock)
	if err != nil {
		t.Fatalf("DialQMP: %v (%s)", err, stderr.String())
	}
	defer q.Close()
	if err := q.DeviceDel(ctx, "mtp0"); err != nil {
		t.Fatalf("DeviceDel: %v", err)
	}
	if err := q.DeviceDel(ctx, "mtp0"); err == nil || !strings.Contains(err.Error(), "mtp0") {
		t.Errorf("DeviceDel of a deleted device = %v, want QEMU's error naming it", err)
	}
	m := &Machine{RootDir: dir}
	if err := q.DeviceAdd(ctx, m.DeviceProps()); err != nil {
		t.Fatalf("DeviceAdd: %v", err)
	}
	if err := q.DeviceAdd(ctx, m.DeviceProps()); err == nil {
		t.Errorf("DeviceAdd of a present id = nil error, want a duplicate-id error")
	}
	if _, err := q.Execute(ctx, "quit", nil); err != nil {
		t.Errorf("quit: %v", err)
	}
}
