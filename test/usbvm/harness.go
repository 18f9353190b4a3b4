package usbvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Scenario is one end-to-end check: the host prepares the device's folder, a test function runs
// in the guest, the host checks the folder afterwards. Adding a scenario is one such value and one
// TestXxx in test/usbvm/guest.
type Scenario struct {
	// Name is the guest test function (TestTransport); its folder on the device is Name without
	// the "Test" prefix.
	Name string
	// Setup prepares the scenario's folder on the host side before the guest boots (nil: an empty
	// folder).
	Setup func(dir string) error
	// Check inspects the scenario's folder after the guest powered off (nil: nothing to check).
	Check func(dir string) error
	// HCDs limits the scenario to these host controllers (nil: QEMU's, XHCI and EHCI; the
	// uMTP-Responder device model, UMTP, runs only the scenarios that name it).
	HCDs []string
}

// On reports whether the scenario runs behind host controller hcd.
func (s Scenario) On(hcd string) bool {
	if len(s.HCDs) == 0 {
		return hcd != UMTP
	}
	for _, h := range s.HCDs {
		if h == hcd {
			return true
		}
	}
	return false
}

// Dir is the scenario's folder inside the device's root folder.
func (s Scenario) Dir() string { return strings.TrimPrefix(s.Name, "Test") }

// GuestResult is the outcome of one guest test.
type GuestResult struct {
	Passed bool
	// Output is what the guest printed for the test (go test -v), its subtests included.
	Output string
	// Elapsed is the guest's own measure.
	Elapsed string
}

// Harness builds the guest once (kernel, busybox, modules, libraries, the guest test binary and
// any extra programs) and boots machines with it.
type Harness struct {
	// ModuleRoot is the folder of Cradle's go.mod.
	ModuleRoot string
	// Work holds build products and per-run files.
	Work   string
	Kernel Kernel
	// base is the gzip'd cpio of the parts common to every run.
	base []byte
	// Log receives progress and the guest consoles (nil: discarded).
	Log io.Writer
	// Trace enables QEMU trace events in every run (see Machine.Trace).
	Trace []string
}

// GuestBinary is where the guest test binary lives in the guest.
const GuestBinary = "/usbvm/guest.test"

// HarnessOptions says what to build into the guest.
type HarnessOptions struct {
	// GuestPackage is built with `go test -c -tags usbvmguest` into GuestBinary
	// (default ./test/usbvm/guest).
	GuestPackage string
	// Programs are main packages built with `go build` into the guest: guest path -> package
	// (./cmd/foo, or "." for cradle itself).
	Programs map[string]string
	// MTPTools adds libmtp's tools (for the benchmark's baseline).
	MTPTools bool
	// UMTP adds uMTP-Responder and the gadget modules (the UMTP device model).
	UMTP bool
}

// NewHarness builds the guest programs and the base image in work.
func NewHarness(ctx context.Context, work string, opt HarnessOptions, log io.Writer) (*Harness, error) {
	h := &Harness{Work: work, Log: log}
	if h.Log == nil {
		h.Log = io.Discard
	}
	root, err := ModuleRoot(ctx)
	if err != nil {
		return nil, err
	}
	h.ModuleRoot = root
	if h.Kernel, err = FindKernel(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	pkg := opt.GuestPackage
	if pkg == "" {
		pkg = "./test/usbvm/guest"
	}
	progs := map[string]string{}
	guestBin := filepath.Join(work, "guest.test")
	if err := h.goCmd(ctx, "test", "-c", "-tags", "usbvmguest", "-o", guestBin, pkg); err != nil {
		return nil, err
	}
	progs[GuestBinary] = guestBin
	for dst, p := range opt.Programs {
		out := filepath.Join(work, filepath.Base(dst))
		if err := h.goCmd(ctx, "build", "-o", out, p); err != nil {
			return nil, err
		}
		progs[dst] = out
	}
	fmt.Fprintf(h.Log, "usbvm: built guest programs in %s\n", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	a, err := BaseImage(ctx, h.Kernel, BaseOptions{Programs: progs, MTPTools: opt.MTPTools, UMTP: opt.UMTP})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := a.WriteGzip(&b); err != nil {
		return nil, err
	}
	h.base = b.Bytes()
	fmt.Fprintf(h.Log, "usbvm: base image %d KiB (kernel %s) in %s\n", len(h.base)>>10, h.Kernel.Version, time.Since(start).Round(time.Millisecond))
	return h, nil
}

// ModuleRoot returns the folder of the enclosing module's go.mod.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", cmdErr(err))
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside Cradle's module: run the harness from the source tree")
	}
	return filepath.Dir(mod), nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

func (h *Harness) goCmd(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = h.ModuleRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// RunOptions describes one boot.
type RunOptions struct {
	HCD string
	// RootDir is the device's folder on the host (absolute).
	RootDir string
	// Command runs in the guest; its exit status is the run's.
	Command string
	// Env is exported before Command.
	Env map[string]string
	// Files are extra guest files for this run only.
	Files map[string][]byte
	// Handlers add control verbs.
	Handlers map[string]Handler
	Timeout  time.Duration
	MemoryMB int
	// CPUs is the guest's virtual CPUs (0: one).
	CPUs int
	// Trace enables QEMU trace events (see Machine.Trace).
	Trace []string
}

// Boot runs one machine with the base image and this run's /init.
func (h *Harness) Boot(ctx context.Context, name string, opt RunOptions) (*Result, error) {
	dir := filepath.Join(h.Work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	a := NewArchive()
	if err := a.Bytes("/init", InitScript(opt.Command, opt.Env), 0o755); err != nil {
		return nil, err
	}
	for p, b := range opt.Files {
		if err := a.Bytes(p, b, 0o755); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	b.Write(h.base)
	if err := a.WriteGzip(&b); err != nil {
		return nil, err
	}
	initrd := filepath.Join(dir, "initrd.img")
	if err := os.WriteFile(initrd, b.Bytes(), 0o644); err != nil {
		return nil, err
	}
	m := &Machine{
		Kernel:   h.Kernel,
		Initrd:   initrd,
		HCD:      opt.HCD,
		RootDir:  opt.RootDir,
		MemoryMB: opt.MemoryMB,
		CPUs:     opt.CPUs,
		Work:     dir,
		Timeout:  opt.Timeout,
		Console:  h.Log,
		Handlers: opt.Handlers,
		Trace:    opt.Trace,
	}
	return m.Run(ctx)
}

// RunScenarios prepares each scenario's folder under root, boots one machine on hcd that runs the
// guest tests of the scenarios that run on hcd, and returns each test's result. The error is about the machine (QEMU died
// or hung, no exit marker); a failed guest test is in its result, not in the error.
func (h *Harness) RunScenarios(ctx context.Context, hcd, root string, scenarios []Scenario, timeout time.Duration) (map[string]GuestResult, *Result, error) {
	var names []string
	for _, s := range scenarios {
		if !s.On(hcd) {
			continue
		}
		names = append(names, s.Name)
		dir := filepath.Join(root, s.Dir())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, err
		}
		if s.Setup != nil {
			if err := s.Setup(dir); err != nil {
				return nil, nil, fmt.Errorf("set up %s: %w", s.Name, err)
			}
		}
	}
	cmd := fmt.Sprintf("%s -test.v -test.count=1 -test.timeout=%s -test.run '^(%s)$'",
		GuestBinary, (timeout - time.Minute).String(), strings.Join(names, "|"))
	res, err := h.Boot(ctx, "run-"+hcd, RunOptions{
		HCD:     hcd,
		RootDir: root,
		Command: cmd,
		Env:     map[string]string{"CRADLE_USBVM_HCD": hcd, "GOTRACEBACK": "all"},
		Timeout: timeout,
		Trace:   h.Trace,
	})
	if res == nil {
		return nil, nil, err
	}
	results := ParseGoTest(res.Console)
	if errors.Is(err, ErrGuestFailed) {
		err = nil // the tests' own results say what failed
	}
	return results, res, err
}

var (
	runRE    = regexp.MustCompile(`^=== (RUN|CONT|PAUSE|NAME)\s+(\S+)`)
	resultRE = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(([^)]*)\)`)
)

// ParseGoTest reads `go test -v` output and returns the result of each top-level test, with the
// output printed while it (or one of its subtests) ran.
func ParseGoTest(out string) map[string]GuestResult {
	res := map[string]GuestResult{}
	outputs := map[string]*strings.Builder{}
	current := ""
	for _, line := range strings.Split(out, "\n") {
		if m := runRE.FindStringSubmatch(line); m != nil {
			current = strings.SplitN(m[2], "/", 2)[0]
		}
		if current != "" {
			b := outputs[current]
			if b == nil {
				b = &strings.Builder{}
				outputs[current] = b
			}
			b.WriteString(line)
			b.WriteByte('\n')
		}
		if m := resultRE.FindStringSubmatch(line); m != nil && !strings.Contains(m[2], "/") {
			// Subtests' result lines follow; they stay with this test until the next RUN line.
			res[m[2]] = GuestResult{Passed: m[1] == "PASS", Elapsed: m[3]}
		}
	}
	for name, r := range res {
		if b := outputs[name]; b != nil {
			r.Output = b.String()
			res[name] = r
		}
	}
	// A test that started but never finished (the guest crashed in it) gets its output, failed.
	for name, b := range outputs {
		if _, ok := res[name]; !ok {
			res[name] = GuestResult{Passed: false, Output: b.String() + "(the test never finished)\n"}
		}
	}
	return res
}
