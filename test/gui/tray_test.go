package gui

import (
	"bufio"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// sessionBus starts a D-Bus session daemon of the test's own (as dbus-run-session does) and
// returns its address; it stops with the test.
func sessionBus(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Fatal("dbus-daemon is missing: install it with `make deps-headless`")
	}
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case addr := <-line:
		if addr == "" {
			t.Fatal("dbus-daemon printed no address")
		}
		return addr
	case <-time.After(20 * time.Second):
		t.Fatal("dbus-daemon did not print its address")
	}
	return ""
}

// watcher is a StatusNotifierWatcher, the registry a desktop's tray keeps: items register with
// it, and the tray then reads their properties and menu.
type watcher struct {
	mu    sync.Mutex
	items []string // "sender/path"
	reg   chan string
}

// RegisterStatusNotifierItem is org.kde.StatusNotifierWatcher's method: an item registers
// (with its object path, or its bus name).
func (w *watcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	item := string(sender) + service
	if !strings.HasPrefix(service, "/") {
		item = service + "/StatusNotifierItem"
	}
	w.mu.Lock()
	w.items = append(w.items, item)
	w.mu.Unlock()
	select {
	case w.reg <- item:
	default:
	}
	return nil
}

// RegisterStatusNotifierHost is the watcher's method for trays.
func (w *watcher) RegisterStatusNotifierHost(service string) *dbus.Error { return nil }

// startWatcher owns org.kde.StatusNotifierWatcher on the bus at addr.
func startWatcher(t *testing.T, addr string) (*watcher, *dbus.Conn) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connect to the session bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	w := &watcher{reg: make(chan string, 4)}
	const path = "/StatusNotifierWatcher"
	if err := conn.Export(w, path, "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatal(err)
	}
	props := map[string]dbus.Variant{
		"IsStatusNotifierHostRegistered": dbus.MakeVariant(true),
		"ProtocolVersion":                dbus.MakeVariant(int32(0)),
	}
	if err := conn.Export(propsOf{"org.kde.StatusNotifierWatcher": props}, path, "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName("org.kde.StatusNotifierWatcher", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.kde.StatusNotifierWatcher: %v (reply %d)", err, reply)
	}
	return w, conn
}

// propsOf serves org.freedesktop.DBus.Properties.Get and GetAll from fixed values.
type propsOf map[string]map[string]dbus.Variant

func (p propsOf) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	if v, ok := p[iface][name]; ok {
		return v, nil
	}
	return dbus.Variant{}, dbus.MakeFailedError(fmt.Errorf("no property %s.%s", iface, name))
}

func (p propsOf) GetAll(iface string) (map[string]dbus.Variant, *dbus.Error) {
	return p[iface], nil
}

// menuItem is one entry of a dbusmenu layout.
type menuItem struct {
	id    int32
	label string
}

// trayMenu reads the item's menu (com.canonical.dbusmenu.GetLayout) as its entries in order.
func trayMenu(t *testing.T, conn *dbus.Conn, dest string, path dbus.ObjectPath) []menuItem {
	t.Helper()
	var rev uint32
	var layout struct {
		ID    int32
		Props map[string]dbus.Variant
		Kids  []dbus.Variant
	}
	if err := conn.Object(dest, path).Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &layout); err != nil {
		t.Fatalf("GetLayout: %v", err)
	}
	var items []menuItem
	for _, k := range layout.Kids {
		fields, ok := k.Value().([]any)
		if !ok || len(fields) < 2 {
			t.Fatalf("menu entry %v is not (id, properties, children)", k)
		}
		id, _ := fields[0].(int32)
		props, _ := fields[1].(map[string]dbus.Variant)
		label := ""
		if v, ok := props["label"]; ok {
			label, _ = v.Value().(string)
		}
		items = append(items, menuItem{id: id, label: label})
	}
	return items
}

// TestTrayOnSessionBus runs `cradle --background` on a session bus with a StatusNotifierWatcher,
// as a desktop with a tray has: the item registers, its menu shows the status, and its Sync
// Now, Open and Quit work (no window until Open).
func TestTrayOnSessionBus(t *testing.T) {
	cradle, _ := binaries(t)
	x := startX(t)
	addr := sessionBus(t)
	wt, conn := startWatcher(t, addr)
	w := newWorld(t, x, cradle)
	put := func(path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put(filepath.Join(w.desktop, "report.txt"), "from the desktop")
	m := serialRE.FindStringSubmatch(w.ok("devices", "--json"))
	w.ok("partner", "add", "--name", "docs", "--provider", "files", "--device", m[1], "--desktop", w.desktop, "--device-path", "Documents")

	env := append(w.env(), "DBUS_SESSION_BUS_ADDRESS="+addr)
	p := x.startEnv(env, cradle, w.args("--background")...)
	var item string
	select {
	case item = <-wt.reg:
	case <-time.After(waitLimit):
		t.Fatalf("no item registered with the StatusNotifierWatcher within %v", waitLimit)
	case <-p.done:
		t.Fatalf("cradle --background exited: %v", p.err)
	}
	dest, path, _ := strings.Cut(item, "/")
	path = "/" + path
	t.Logf("the tray item registered: %s %s", dest, path)
	obj := conn.Object(dest, dbus.ObjectPath(path))
	prop := func(name string) any {
		v, err := obj.GetProperty("org.kde.StatusNotifierItem." + name)
		if err != nil {
			t.Fatalf("property %s: %v", name, err)
		}
		return v.Value()
	}
	if title := prop("Title"); title != "Cradle" {
		t.Errorf("the item's title = %v, want Cradle", title)
	}
	if st := prop("Status"); st != "Active" {
		t.Errorf("the item's status = %v, want Active", st)
	}
	menuPath, _ := prop("Menu").(dbus.ObjectPath)
	if ids := x.windows("Cradle", true); len(ids) != 0 {
		t.Errorf("a window is shown in the background: %v", ids)
	}

	// The menu: the status line, a separator, Sync Now, Open, Quit.
	find := func(label string) menuItem {
		t.Helper()
		var items []menuItem
		deadline := time.Now().Add(waitLimit)
		for {
			items = trayMenu(t, conn, dest, menuPath)
			for _, it := range items {
				if it.label == label {
					return it
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the tray menu has no %q: %+v", label, items)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// The menu is filled in after the item registers (a tray host reads it again when told it
	// changed): wait for its whole layout rather than take the first reading.
	var labels []string
	for deadline := time.Now().Add(waitLimit); ; {
		labels = labels[:0]
		for _, it := range trayMenu(t, conn, dest, menuPath) {
			labels = append(labels, it.label)
		}
		if len(labels) >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the tray menu: %q", labels)
	if len(labels) != 5 || labels[2] != "Sync Now" || labels[3] != "Open Cradle" || labels[4] != "Quit" {
		t.Fatalf("the tray menu = %q, want the status, a separator, Sync Now, Open Cradle, Quit", labels)
	}
	call := func(it menuItem) error {
		return conn.Object(dest, menuPath).Call("com.canonical.dbusmenu.Event", 0, it.id, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix())).Err
	}
	click := func(it menuItem) {
		t.Helper()
		if err := call(it); err != nil {
			t.Fatalf("click %q: %v", it.label, err)
		}
	}

	// Sync Now syncs; the status line says so when done.
	click(find("Sync Now"))
	waitFiles(t, "report.txt on the phone after Sync Now", func() bool {
		_, err := os.Stat(filepath.Join(w.phone, "Documents", "report.txt"))
		return err == nil
	})
	find("Up to date")

	// Open shows the window.
	click(find("Open Cradle"))
	win := x.window("Cradle")
	if ids := x.windows("Cradle", true); len(ids) != 1 {
		t.Errorf("visible windows after Open: %v, want one", ids)
	}
	x.waitFor("the window to draw", func(img image.Image) bool { return !blank(img, win) })

	// Quit ends the process, which may leave the bus before it answers the click.
	if err := call(find("Quit")); err != nil && !strings.Contains(err.Error(), "disconnected from message bus without replying") {
		t.Fatalf("click \"Quit\": %v", err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("cradle --background after Quit: %v", p.err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("cradle --background still runs %v after Quit", waitLimit)
	}
}
