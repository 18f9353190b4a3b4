package ipc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// socket returns a socket path in a private folder of the test's.
func socket(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ipc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "run", "c.sock")
}

func serve(t *testing.T, path string, h Handler) *Server {
	t.Helper()
	s, err := Listen(path, h, Options{Program: "test", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return s
}

func run(t *testing.T, path string, req Request, stdin io.Reader) (string, string, int, error) {
	t.Helper()
	cl, err := Dial(path)
	if err != nil {
		return "", "", 0, err
	}
	var out, errb bytes.Buffer
	if req.Dir == "" {
		req.Dir = "/"
	}
	if req.Kind == "" {
		req.Kind = KindRun
	}
	code, err := cl.Run(context.Background(), req, stdin, &out, &errb)
	return out.String(), errb.String(), code, err
}

// echo is a handler that prints its arguments, reads stdin when asked to, and exits with the
// status its first argument names.
func echo(ctx context.Context, req *Request, s *Stream) int {
	fmt.Fprintf(s.Stdout, "args=%s dir=%s tty=%v\n", strings.Join(req.Args, ","), req.Dir, req.Stderr.TTY)
	fmt.Fprintln(s.Stderr, "to stderr")
	if len(req.Args) > 1 && req.Args[1] == "stdin" {
		b, err := io.ReadAll(s.Stdin)
		fmt.Fprintf(s.Stdout, "stdin=%q err=%v\n", b, err)
	}
	if len(req.Args) > 1 && req.Args[1] == "wait" {
		<-ctx.Done()
		fmt.Fprintln(s.Stderr, "cancelled")
		return 130
	}
	if len(req.Args) > 1 && req.Args[1] == "big" {
		s.Stdout.Write(bytes.Repeat([]byte("x"), 3*MaxFrame+5))
	}
	var code int
	fmt.Sscan(req.Args[0], &code)
	return code
}

func TestRunRoundTrip(t *testing.T) {
	path := socket(t)
	serve(t, path, echo)
	out, errs, code, err := run(t, path, Request{Args: []string{"3", "x"}, Dir: "/home/u", Stderr: Terminal{TTY: true}}, nil)
	if err != nil || code != 3 || out != "args=3,x dir=/home/u tty=true\n" || errs != "to stderr\n" {
		t.Fatalf("run = %q, %q, %d, %v", out, errs, code, err)
	}
	out, _, code, err = run(t, path, Request{Args: []string{"0", "stdin"}}, strings.NewReader("hello\nworld"))
	if err != nil || code != 0 || !strings.Contains(out, `stdin="hello\nworld" err=<nil>`) {
		t.Fatalf("stdin: %q, %d, %v", out, code, err)
	}
	out, _, _, err = run(t, path, Request{Args: []string{"0", "big"}}, nil)
	if err != nil || len(out) != len("args=0,big dir=/ tty=false\n")+3*MaxFrame+5 {
		t.Fatalf("big output: %d bytes, %v", len(out), err)
	}
}

// TestCancel: the client's ctx ending cancels the command, whose status still arrives.
func TestCancel(t *testing.T) {
	path := socket(t)
	serve(t, path, echo)
	cl, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	code, err := cl.Run(ctx, Request{Kind: KindRun, Args: []string{"0", "wait"}, Dir: "/"}, nil, &out, &errb)
	if err != nil || code != 130 || !strings.Contains(errb.String(), "cancelled") {
		t.Fatalf("cancelled run = %d, %v, stderr %q", code, err, errb.String())
	}
}

// TestCloseCancels: closing the server cancels the running requests, which still send their
// status.
func TestCloseCancels(t *testing.T) {
	path := socket(t)
	s := serve(t, path, echo)
	cl, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(200*time.Millisecond, func() { s.Close() })
	var out, errb bytes.Buffer
	code, err := cl.Run(context.Background(), Request{Kind: KindRun, Args: []string{"0", "wait"}, Dir: "/"}, nil, &out, &errb)
	if err != nil || code != 130 {
		t.Fatalf("run during Close = %d, %v", code, err)
	}
	if _, err := Dial(path); !errors.Is(err, ErrNoServer) {
		t.Fatalf("Dial after Close = %v, want ErrNoServer", err)
	}
}

// TestBusyAndStale: a second server of the same socket gets ErrBusy; a socket left by a
// killed process answers as no server, and the next server takes it over.
func TestBusyAndStale(t *testing.T) {
	path := socket(t)
	s := serve(t, path, echo)
	if _, err := Listen(path, echo, Options{Logger: quiet()}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Listen = %v, want ErrBusy", err)
	}
	s.Close()
	// A stale socket: bound by a process that is gone (here: a listener closed without
	// removing its file).
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the stale socket file is not there: %v", err)
	}
	if _, err := Dial(path); !errors.Is(err, ErrNoServer) {
		t.Fatalf("Dial of a stale socket = %v, want ErrNoServer", err)
	}
	serve(t, path, echo)
	if _, _, code, err := run(t, path, Request{Args: []string{"0"}}, nil); err != nil || code != 0 {
		t.Fatalf("run after the stale socket was taken over = %d, %v", code, err)
	}
}

// TestMalformed: garbage, a wrong first frame, a request of another version, an oversized
// frame and a client that says nothing are refused; the server serves the next client.
func TestMalformed(t *testing.T) {
	path := socket(t)
	serve(t, path, echo)
	raw := func(send []byte) (byte, string) {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if k, _, err := readFrame(c); err != nil || k != frameHello {
			t.Fatalf("no hello: %q %v", k, err)
		}
		c.Write(send)
		k, p, err := readFrame(c)
		if err != nil {
			return 0, err.Error()
		}
		return k, string(p)
	}
	frame := func(kind byte, p string) []byte {
		var b bytes.Buffer
		writeFrame(&b, kind, []byte(p))
		return b.Bytes()
	}
	for _, tc := range []struct {
		name string
		send []byte
		want string
	}{
		{"garbage", []byte("GET / HTTP/1.0\r\n\r\n"), ""},
		{"not the request", frame(frameStdin, "x"), "before the request"},
		{"not JSON", frame(frameRequest, "{"), "malformed request"},
		{"other version", frame(frameRequest, `{"version":99,"kind":"run","dir":"/"}`), "another version"},
		{"unknown kind", frame(frameRequest, `{"version":1,"kind":"format-disk","dir":"/"}`), "unknown kind"},
		{"relative dir", frame(frameRequest, `{"version":1,"kind":"run","dir":"home"}`), "not an absolute path"},
		{"other env", frame(frameRequest, `{"version":1,"kind":"run","dir":"/","env":{"LD_PRELOAD":"x"}}`), "LD_PRELOAD"},
		{"oversized", []byte{frameRequest, 0xff, 0xff, 0xff, 0xff}, ""},
	} {
		k, msg := raw(tc.send)
		if tc.want != "" && (k != frameRefused || !strings.Contains(msg, tc.want)) {
			t.Errorf("%s: answer %q %q, want a refusal with %q", tc.name, k, msg, tc.want)
		}
		if tc.want == "" && k == frameExit {
			t.Errorf("%s: the request ran", tc.name)
		}
	}
	if _, _, code, err := run(t, path, Request{Args: []string{"4"}}, nil); err != nil || code != 4 {
		t.Fatalf("run after the malformed requests = %d, %v", code, err)
	}
}

func TestCheckPeer(t *testing.T) {
	if err := checkPeer(1000, 1000); err != nil {
		t.Errorf("checkPeer(1000, 1000) = %v, want nil", err)
	}
	for _, uid := range []uint32{0, 999, 1001, 65534} {
		var pe *PeerError
		if err := checkPeer(uid, 1000); !errors.As(err, &pe) || pe.UID != int(uid) {
			t.Errorf("checkPeer(%d, 1000) = %v, want a *PeerError", uid, err)
		}
	}
}

// TestOtherUserRefused connects from a process of another uid (nobody) to a socket it may
// reach (its folder and mode opened for the test): the peer check refuses it, and says so.
// It needs root to start that process.
func TestOtherUserRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("starting a process as another user needs root; TestCheckPeer checks the rule itself")
	}
	if os.Getenv("IPC_TEST_DIAL") != "" {
		return
	}
	dir, err := os.MkdirTemp("", "ipc-peer-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "run", "c.sock")
	s := serve(t, path, echo)
	// Open the way for the other user: the folder and the socket.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(path), 0o755)
	os.Chmod(s.Path(), 0o666)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^TestDialAs$", "-test.v")
	cmd.Env = append(os.Environ(), "IPC_TEST_DIAL="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	// The test binary must be readable by nobody.
	os.Chmod(exe, 0o755)
	for d := filepath.Dir(exe); d != "/" && d != "."; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o005 == 0 {
			os.Chmod(d, st.Mode().Perm()|0o005)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the dial as nobody failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "REFUSED: this Cradle belongs to another user (uid 0); a connection from uid 65534 is refused") {
		t.Fatalf("the connection from uid 65534 was not refused by the peer check:\n%s", out)
	}
}

// TestDialAs is the other user's side of TestOtherUserRefused.
func TestDialAs(t *testing.T) {
	path := os.Getenv("IPC_TEST_DIAL")
	if path == "" {
		t.Skip("run by TestOtherUserRefused")
	}
	_, err := Dial(path)
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("Dial as uid %d = %v, want a refusal", os.Getuid(), err)
	}
	fmt.Printf("REFUSED: %s\n", re.Msg)
}

// TestPrivateDir: the socket's folder must be the user's own and closed to others.
func TestPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if err := privateDir(dir); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	if err := privateDir(dir); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("privateDir of a 0755 folder = %v, want an error", err)
	}
	long := "/" + strings.Repeat("x", 120) + "/c.sock"
	if _, err := Listen(long, echo, Options{}); err == nil || !strings.Contains(err.Error(), "XDG_RUNTIME_DIR") {
		t.Errorf("Listen on a too long path = %v", err)
	}
}

func TestSocketPath(t *testing.T) {
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	a, b := SocketPath("/home/u/.config/cradle"), SocketPath("/home/u/.config/cradle/")
	if a != b || filepath.Dir(a) != filepath.Join(rt, "cradle") {
		t.Errorf("SocketPath = %s and %s, want one path in %s/cradle", a, b, rt)
	}
	if c := SocketPath("/tmp/other"); c == a {
		t.Errorf("two config folders share the socket %s", c)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	if d := RuntimeDir(); d != fmt.Sprintf("/tmp/cradle-%d", os.Getuid()) {
		t.Errorf("RuntimeDir without XDG_RUNTIME_DIR = %s", d)
	}
}

// FuzzDecodeRequest: no payload makes DecodeRequest panic, and what it accepts is within its
// bounds.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"version":1,"kind":"run","args":["sync","--json"],"dir":"/home/u","env":{"DISPLAY":":0"},"stderr":{"tty":true,"width":80}}`))
	f.Add([]byte(`{"version":1,"kind":"window","dir":"/"}`))
	f.Add([]byte(`{"version":1,"kind":"run","args":[null,1],"dir":"/"}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		if r.Version != Version || !filepath.IsAbs(r.Dir) || len(r.Args) > maxArgs {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// FuzzReadFrame: any bytes give a frame within MaxFrame or an error, never a panic.
func FuzzReadFrame(f *testing.F) {
	var b bytes.Buffer
	writeFrame(&b, frameRequest, []byte(`{"version":1}`))
	f.Add(b.Bytes())
	f.Add([]byte{frameStdout, 0, 0, 0, 2, 'h', 'i'})
	f.Add([]byte{frameExit, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		_, p, err := readFrame(bytes.NewReader(in))
		if err == nil && len(p) > MaxFrame {
			t.Fatalf("payload of %d bytes", len(p))
		}
	})
}
