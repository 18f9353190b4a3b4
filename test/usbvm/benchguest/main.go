// Command benchguest runs inside the usbvm guest for `make bench-usb`: it gets and sends a large
// file through QEMU's usb-mtp with Cradle's code (discovery, the gousb transport, the MTP
// initiator) and with libmtp's mtp-getfile and mtp-sendfile, alternately, several times, checks
// every copy by content hash, and prints one "BENCH {json}" line per measurement on stdout for the
// host (test/usbvm/cmd/usbbench) to summarise. With -list it instead lists every object of the
// device (the listing fixture, usbvm.WriteListTree) with Cradle's walk and with libmtp's
// mtp-files, alternately.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/test/usbvm"
)

// Measurement is one timed transfer.
type Measurement struct {
	Tool string `json:"tool"` // "cradle" or "libmtp"
	Op   string `json:"op"`   // "get", "send" or "list"
	Run  int    `json:"run"`
	// Bytes moved.
	Bytes int64 `json:"bytes"`
	// Objects are the files a listing ("list") saw.
	Objects int `json:"objects,omitempty"`
	// Total is the whole operation: finding the device, opening it, the transfer, closing
	// (for libmtp, the tool's process from start to exit).
	Total float64 `json:"total_seconds"`
	// Transfer is the transfer alone (Cradle: from Open/Create to the last byte); 0 for libmtp,
	// whose fixed cost the host subtracts (see Overhead).
	Transfer float64 `json:"transfer_seconds"`
}

// Overhead is the median time libmtp's tool takes for a one-byte file: device discovery,
// session, enumeration.
type Overhead struct {
	Op      string  `json:"op"`
	Seconds float64 `json:"seconds"`
}

const (
	// GetName and TinyName are fixtures the host puts in the device's root folder.
	GetName  = "bench-get.bin"
	TinyName = "bench-tiny.bin"
	sendSrc  = "/tmp/send.bin"
	getDst   = "/tmp/get.bin"
)

var ctl *usbvm.Ctl

// local is the device's storage folder when it is in the guest (uMTP-Responder), else "" (the
// host's folder, reached through the control channel).
var local string

// writeFile writes Content(name, size) to p.
func writeFile(p, name string, size int64) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, usbvm.Content(name, size)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// hostCall runs a control verb (hash, remove) on the device's folder: on the host, or here when
// the storage is the guest's.
func hostCall(ctx context.Context, verb, name string) (string, error) {
	if local == "" {
		return ctl.Call(ctx, verb, name)
	}
	p := local + "/" + name
	switch verb {
	case "remove":
		return "", os.Remove(p)
	case "hash":
		f, err := os.Open(p)
		if err != nil {
			return "absent", nil
		}
		defer f.Close()
		h, n, err := usbvm.HashReader(f)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s %d", h, n), nil
	}
	return "", fmt.Errorf("unknown verb %s", verb)
}

func main() {
	runs := flag.Int("runs", 5, "measurements per tool and operation")
	size := flag.Int64("size", 100<<20, "size of the file to get and send (the host's bench-get.bin)")
	libmtpSends := flag.Bool("libmtp-send", true, "time mtp-sendfile too (QEMU aborts on its uploads through EHCI)")
	umtp := flag.Bool("umtp", false, "bench uMTP-Responder as a gadget in the guest instead of QEMU's usb-mtp")
	list := flag.Bool("list", false, "time a listing of every object (the host's "+usbvm.ListDir+" folder) against mtp-files instead of transfers")
	folders := flag.Int("folders", 100, "with -list: folders of the listing fixture")
	files := flag.Int("files", 100, "with -list: files in each folder")
	profile := flag.Bool("profile", true, "with -list: more Cradle listings that time each MTP operation")
	variants := flag.Bool("variants", false, "with -list -profile: also profile without interrupt reads and with GOMAXPROCS 2")
	warmup := flag.Bool("warmup", true, "with -list: an untimed listing of each tool first")
	flag.Parse()
	f, err := os.OpenFile(usbvm.GuestCtlDevice, os.O_RDWR, 0)
	if err != nil {
		fail(err)
	}
	ctl = usbvm.NewCtl(f)
	if *umtp {
		// The storage is the guest's folder: the fixtures are put there, and sent files checked
		// there, by the guest itself.
		local = usbvm.UMTPStore
		if err := os.MkdirAll(local, 0o755); err != nil {
			fail(err)
		}
		if *list {
			// Written before umtprd starts, so that its inotify sees none of it.
			if err := usbvm.WriteListTree(local, *folders, *files); err != nil {
				fail(err)
			}
		} else {
			for name, n := range map[string]int64{GetName: *size, TinyName: 1} {
				if err := writeFile(local+"/"+name, name, n); err != nil {
					fail(err)
				}
			}
		}
		g, err := usbvm.StartUMTP()
		if err != nil {
			fail(err)
		}
		defer g.Stop()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if d, err := openCradle(context.Background()); err == nil {
				d.Close()
				break
			}
			if time.Now().After(deadline) {
				fail(errors.New("the uMTP gadget does not answer"))
			}
		}
	}
	if *list {
		// The guest may still be enumerating the device (a loaded host): wait for it, untimed.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
			if _, err := findMTP(context.Background()); err == nil {
				break
			} else if time.Now().After(deadline) {
				fail(err)
			}
		}
		if err := runList(*runs, *folders, *files, *warmup, *profile, *variants); err != nil {
			fail(err)
		}
		return
	}
	if err := run(*runs, *size, *libmtpSends); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "benchguest: %v\n", err)
	os.Exit(1)
}

func emit(kind string, v any) {
	b, _ := json.Marshal(v)
	fmt.Printf("BENCH %s %s\n", kind, b)
}

func run(runs int, size int64, libmtpSends bool) error {
	ctx := context.Background()
	if err := writeContent(sendSrc, "bench-send", size); err != nil {
		return err
	}
	ops := []string{"get", "send"}
	if !libmtpSends {
		ops = ops[:1]
	}
	for _, op := range ops {
		var ts []float64
		for i := 0; i < 3; i++ {
			var d time.Duration
			var err error
			if op == "get" {
				d, err = libmtpGet(ctx, TinyName, 1)
			} else {
				d, err = libmtpSend(ctx, "/tmp/tiny.bin", fmt.Sprintf("bench-tiny-%d.bin", i), 1)
			}
			if err != nil {
				return fmt.Errorf("libmtp overhead: %w", err)
			}
			ts = append(ts, d.Seconds())
		}
		emit("overhead", Overhead{Op: op, Seconds: median(ts)})
	}
	for i := 1; i <= runs; i++ {
		total, transfer, err := cradleGet(ctx, size)
		if err != nil {
			return fmt.Errorf("cradle get, run %d: %w", i, err)
		}
		emit("measure", Measurement{Tool: "cradle", Op: "get", Run: i, Bytes: size, Total: total.Seconds(), Transfer: transfer.Seconds()})

		d, err := libmtpGet(ctx, GetName, size)
		if err != nil {
			return fmt.Errorf("libmtp get, run %d: %w", i, err)
		}
		emit("measure", Measurement{Tool: "libmtp", Op: "get", Run: i, Bytes: size, Total: d.Seconds()})

		name := fmt.Sprintf("bench-send-cradle-%d.bin", i)
		total, transfer, err = cradleSend(ctx, name, size)
		if err != nil {
			return fmt.Errorf("cradle send, run %d: %w", i, err)
		}
		emit("measure", Measurement{Tool: "cradle", Op: "send", Run: i, Bytes: size, Total: total.Seconds(), Transfer: transfer.Seconds()})
		if err := checkAndRemove(ctx, name, size); err != nil {
			return err
		}

		if !libmtpSends {
			continue
		}
		name = fmt.Sprintf("bench-send-libmtp-%d.bin", i)
		d, err = libmtpSend(ctx, sendSrc, name, size)
		if err != nil {
			return fmt.Errorf("libmtp send, run %d: %w", i, err)
		}
		emit("measure", Measurement{Tool: "libmtp", Op: "send", Run: i, Bytes: size, Total: d.Seconds()})
		if err := checkAndRemove(ctx, name, size); err != nil {
			return err
		}
	}
	return nil
}

func writeContent(p, name string, size int64) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, usbvm.Content(name, size)); err != nil {
		f.Close()
		return err
	}
	if err := os.WriteFile("/tmp/tiny.bin", []byte{'x'}, 0o644); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// openCradle finds and opens the MTP device (QEMU's, or the uMTP gadget) as the Monitor does.
func openCradle(ctx context.Context) (device.Device, error) {
	d, _, err := openCradleTimed(ctx)
	return d, err
}

func cradleGet(ctx context.Context, size int64) (total, transfer time.Duration, err error) {
	start := time.Now()
	d, err := openCradle(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer d.Close()
	ss, err := d.Storages(ctx)
	if err != nil {
		return 0, 0, err
	}
	out, err := os.Create(getDst)
	if err != nil {
		return 0, 0, err
	}
	defer out.Close()
	tstart := time.Now()
	r, err := d.Open(ctx, ss[0].ID, GetName, 0)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(out, r)
	r.Close()
	if err != nil {
		return 0, 0, err
	}
	transfer = time.Since(tstart)
	if err := d.Close(); err != nil {
		return 0, 0, err
	}
	total = time.Since(start)
	if n != size {
		return 0, 0, fmt.Errorf("got %d bytes, want %d", n, size)
	}
	return total, transfer, checkLocal(getDst, GetName, size)
}

func cradleSend(ctx context.Context, name string, size int64) (total, transfer time.Duration, err error) {
	start := time.Now()
	d, err := openCradle(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer d.Close()
	ss, err := d.Storages(ctx)
	if err != nil {
		return 0, 0, err
	}
	src, err := os.Open(sendSrc)
	if err != nil {
		return 0, 0, err
	}
	defer src.Close()
	tstart := time.Now()
	if _, err := d.Create(ctx, ss[0].ID, name, size, time.Now(), bufio.NewReaderSize(src, 1<<20)); err != nil {
		return 0, 0, err
	}
	transfer = time.Since(tstart)
	if err := d.Close(); err != nil {
		return 0, 0, err
	}
	return time.Since(start), transfer, nil
}

// checkLocal verifies a file the guest received against the content the host generated.
func checkLocal(p, name string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h, n, err := usbvm.HashReader(f)
	if err != nil {
		return err
	}
	if h != usbvm.ContentHash(name, size) || n != size {
		return fmt.Errorf("%s: %d bytes, hash %s: not the device's %s", p, n, h, name)
	}
	return nil
}

// checkAndRemove verifies on the host that a sent file arrived whole, then deletes it from the
// device (untimed) so the next run starts alike.
func checkAndRemove(ctx context.Context, name string, size int64) error {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	got, err := hostCall(cctx, "hash", name)
	if err != nil {
		return err
	}
	if want := usbvm.ContentHash("bench-send", size) + " " + strconv.FormatInt(size, 10); got != want {
		return fmt.Errorf("the host has %s as %s, want %s", name, got, want)
	}
	_, err = hostCall(cctx, "remove", name)
	return err
}

var fileIDRE = regexp.MustCompile(`File ID: (\d+)\s+Filename: (\S+)`)

// libmtpID finds the object ID libmtp gives name (mtp-files; QEMU numbers objects in the same
// order in every session, so the ID holds for the next tool's session).
func libmtpID(ctx context.Context, name string) (string, error) {
	out, err := exec.CommandContext(ctx, "mtp-files").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mtp-files: %w: %s", err, tail(out))
	}
	for _, m := range fileIDRE.FindAllStringSubmatch(string(out), -1) {
		if m[2] == name {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("mtp-files does not list %s: %s", name, tail(out))
}

func libmtpGet(ctx context.Context, name string, size int64) (time.Duration, error) {
	id, err := libmtpID(ctx, name)
	if err != nil {
		return 0, err
	}
	os.Remove(getDst)
	start := time.Now()
	out, err := exec.CommandContext(ctx, "mtp-getfile", id, getDst).CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("mtp-getfile %s: %w: %s", id, err, tail(out))
	}
	if size > 1 {
		if err := checkLocal(getDst, name, size); err != nil {
			return 0, fmt.Errorf("mtp-getfile: %w", err)
		}
	}
	return d, nil
}

// libmtpSend times mtp-sendfile. QEMU often does not know the new object yet when libmtp asks for
// its metadata right after the transfer (it registers objects from inotify events), and the tool
// then exits with "Could not retrieve updated metadata": the transfer itself is complete, which
// the host's hash of the file confirms, so that error is accepted.
//
// mtp-sendfile names the object after the local file, so src is linked under name first.
func libmtpSend(ctx context.Context, src, name string, size int64) (time.Duration, error) {
	local := "/tmp/libmtp/" + name
	if err := os.MkdirAll("/tmp/libmtp", 0o755); err != nil {
		return 0, err
	}
	if err := os.Link(src, local); err != nil {
		return 0, err
	}
	defer os.Remove(local)
	start := time.Now()
	out, err := exec.CommandContext(ctx, "mtp-sendfile", local, name).CombinedOutput()
	d := time.Since(start)
	if err != nil && !strings.Contains(string(out), "Could not retrieve updated metadata") {
		return 0, fmt.Errorf("mtp-sendfile %s: %w: %s", name, err, tail(out))
	}
	if size == 1 {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		got, err := hostCall(cctx, "hash", name)
		if err != nil {
			return 0, err
		}
		if !strings.HasSuffix(got, " 1") {
			return 0, fmt.Errorf("mtp-sendfile %s: the host has %s", name, got)
		}
		if _, err := hostCall(cctx, "remove", name); err != nil {
			return 0, err
		}
	}
	return d, nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
