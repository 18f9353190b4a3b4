package usbvm

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// goTestOutput is what `go test -v` printed in a guest run: a passing test with subtests, a failing
// one, one that started and never finished (the guest died), console noise in between.
const goTestOutput = `USBVM-BEGIN
=== RUN   TestTransport
=== RUN   TestTransport/Scan
=== RUN   TestTransport/Get
    transport_test.go:116: GetObject big.bin: 25165924 bytes in 660ms (38.1 MB/s)
[   10.120039] usb 1-1: USB disconnect, device number 2
--- PASS: TestTransport (6.11s)
    --- PASS: TestTransport/Scan (0.01s)
    --- PASS: TestTransport/Get (2.49s)
=== RUN   TestDiagnosis
=== RUN   TestDiagnosis/Busy
    diagnosis_test.go:99: OpenTransport while another process holds the device = <nil>, want ErrBusy
--- FAIL: TestDiagnosis (0.63s)
    --- FAIL: TestDiagnosis/Busy (0.63s)
=== RUN   TestHotplug
    hotplug_test.go:10: waiting for the device
`

func TestParseGoTest(t *testing.T) {
	got := ParseGoTest(goTestOutput)
	for _, c := range []struct {
		name     string
		passed   bool
		contains []string
	}{
		{"TestTransport", true, []string{"GetObject big.bin", "--- PASS: TestTransport/Get"}},
		{"TestDiagnosis", false, []string{"want ErrBusy", "--- FAIL: TestDiagnosis/Busy"}},
		{"TestHotplug", false, []string{"waiting for the device", "never finished"}},
	} {
		r, ok := got[c.name]
		if !ok {
			t.Errorf("ParseGoTest: no result for %s", c.name)
			continue
		}
		if r.Passed != c.passed {
			t.Errorf("ParseGoTest: %s passed = %v, want %v", c.name, r.Passed, c.passed)
		}
		for _, s := range c.contains {
			if !strings.Contains(r.Output, s) {
				t.Errorf("ParseGoTest: %s output %q lacks %q", c.name, r.Output, s)
			}
		}
	}
	if strings.Contains(got["TestTransport"].Output, "want ErrBusy") {
		t.Errorf("ParseGoTest: TestTransport's output holds TestDiagnosis's lines")
	}
	if len(got) != 3 {
		t.Errorf("ParseGoTest: %d results, want 3: %v", len(got), got)
	}
}

func TestParseLdd(t *testing.T) {
	out := `	linux-vdso.so.1 (0x00007ffd5e9f2000)
	libusb-1.0.so.0 => /lib/x86_64-linux-gnu/libusb-1.0.so.0 (0x00007f3c1c0e1000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f3c1bf00000)
	libudev.so.1 => /lib/x86_64-linux-gnu/libudev.so.1 (0x00007f3c1c0b3000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f3c1c117000)
`
	got, err := parseLdd(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/lib/x86_64-linux-gnu/libusb-1.0.so.0", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libudev.so.1", "/lib64/ld-linux-x86-64.so.2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("parseLdd = %v, want %v", got, want)
	}
	if _, err := parseLdd("\tlibmissing.so.1 => not found\n"); err == nil {
		t.Errorf("parseLdd(not found) = nil error, want one")
	}
	if got, err := parseLdd("\tstatically linked\n"); err != nil || len(got) != 0 {
		t.Errorf("parseLdd(static) = %v, %v, want nothing", got, err)
	}
}

func TestVersionLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"6.1.0-9-amd64", "6.1.0-56-amd64", true},
		{"6.1.0-56-amd64", "6.1.0-9-amd64", false},
		{"5.10.0-30-amd64", "6.1.0-1-amd64", true},
		{"6.1.0-56-amd64", "6.1.0-56-amd64", false},
	} {
		if got := versionLess(c.a, c.b); got != c.want {
			t.Errorf("versionLess(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestInitScript(t *testing.T) {
	s := string(InitScript("/usbvm/guest.test -test.run '^(TestA)$'", map[string]string{"B": "it's", "A": "x y"}))
	for _, want := range []string{
		"#!/bin/sh\n", "mount -t devtmpfs devtmpfs /dev\n",
		"insmod /lib/modules/usb-common.ko", "insmod /lib/modules/ehci-pci.ko",
		"stty -F /dev/ttyS1 raw -echo", "export A='x y'\nexport B='it'\\''s'\n",
		"echo USBVM-BEGIN\n/usbvm/guest.test -test.run '^(TestA)$'\nrc=$?\n", `echo "USBVM-EXIT $rc"`, "poweroff -f\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("InitScript lacks %q:\n%s", want, s)
		}
	}
	if strings.Index(s, "usbcore.ko") > strings.Index(s, "xhci-hcd.ko") {
		t.Errorf("InitScript loads xhci-hcd before usbcore:\n%s", s)
	}
}

// TestCtl runs the control protocol over a real socket pair: the guest's Ctl on one end, the
// host's parser and replies on the other.
func TestCtl(t *testing.T) {
	guest, host := net.Pipe()
	defer guest.Close()
	defer host.Close()
	go func() {
		r := bufio.NewReader(host)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			c, ok, err := parseCall(line)
			if !ok {
				continue
			}
			var reply string
			switch {
			case err != nil:
				reply = encodeReply(0, "", err)
			case c.Verb == "echo":
				reply = encodeReply(c.ID, strings.Join(c.Args, "|"), nil)
			case c.Verb == "stale":
				// an answer to some older call first, then the right one
				reply = encodeReply(c.ID-1, "old", nil) + encodeReply(c.ID, "new", nil)
			default:
				reply = encodeReply(c.ID, "", errors.New("unknown verb "+c.Verb))
			}
			if _, err := io.WriteString(host, reply); err != nil {
				return
			}
		}
	}()
	ctl := NewCtl(guest)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := []string{"with space", "line\nbreak", "", "100%", "ünï/código"}
	got, err := ctl.Call(ctx, "echo", args...)
	if err != nil || got != strings.Join(args, "|") {
		t.Errorf("Call(echo, %q) = %q, %v, want %q", args, got, err, strings.Join(args, "|"))
	}
	if got, err := ctl.Call(ctx, "stale"); err != nil || got != "new" {
		t.Errorf("Call(stale) = %q, %v, want new", got, err)
	}
	if _, err := ctl.Call(ctx, "nope"); !errors.Is(err, ErrHost) || !strings.Contains(err.Error(), "unknown verb nope") {
		t.Errorf("Call(nope) = %v, want ErrHost with the host's message", err)
	}
	short, scancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer scancel()
	host.Close()
	if _, err := ctl.Call(short, "echo"); err == nil {
		t.Errorf("Call after the host went away = nil error, want one")
	}
}

func TestContent(t *testing.T) {
	a, _ := io.ReadAll(Content("Dir/a.bin", 1000))
	b, _ := io.ReadAll(Content("Dir/a.bin", 1000))
	c, _ := io.ReadAll(Content("Dir/b.bin", 1000))
	if len(a) != 1000 || string(a) != string(b) {
		t.Errorf("Content is not deterministic: %d bytes", len(a))
	}
	if string(a) == string(c) {
		t.Errorf("Content of two names is the same")
	}
	h, n, err := HashReader(strings.NewReader(string(a)))
	if err != nil || n != 1000 || h != ContentHash("Dir/a.bin", 1000) {
		t.Errorf("HashReader = %s, %d, %v, want ContentHash's %s", h, n, err, ContentHash("Dir/a.bin", 1000))
	}
}
