package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildOneFile builds the test plugin of testdata/cradle-provider-onefile into the config
// folder's plugins.
func (e *env) buildOneFile() {
	e.t.Helper()
	build := exec.Command("go", "build", "-o", filepath.Join(e.config, "plugins", "cradle-provider-onefile"), "./testdata/cradle-provider-onefile")
	if out, err := build.CombinedOutput(); err != nil {
		e.t.Fatalf("build the test plugin: %v\n%s", err, out)
	}
}

// TestFailedSessionStatusLine: a session that failed shows in `cradle status` as one line under
// the table (on stdout, where the table is), saying why and what to do; a restart of the command
// keeps both.
func TestFailedSessionStatusLine(t *testing.T) {
	e := newEnv(t)
	put(t, filepath.Join(e.desktop, "a.txt"), "a", at(0))
	e.partner()
	e.syncJSON()
	if err := os.RemoveAll(e.desktop); err != nil {
		t.Fatal(err)
	}
	if r := e.run("sync"); r.code == 0 {
		t.Fatalf("sync with the desktop folder gone: %v, want a failure", r)
	}
	r := e.ok("status")
	var line string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "1 docs: ") {
			line = l
		}
	}
	if !strings.HasPrefix(line, "1 docs: last sync failed: ") || !strings.Contains(line, e.desktop+" does not exist") || !strings.Contains(line, "mount it") {
		t.Errorf("status = %v\nwant a line \"1 docs: last sync failed: <why, naming the folder>; <what to do>\"", r)
	}
}

// TestPluginCrashIsOneLine: a provider plugin that crashes in the middle of a sync is one line
// where users look (cradle sync's error, cradle status), with the panic's message and the place
// of the plugin's log file, which holds the traceback.
func TestPluginCrashIsOneLine(t *testing.T) {
	e := newEnv(t)
	e.buildOneFile()
	file := filepath.Join(e.desktop, "settings.conf")
	e.ok("partner", "add", "--name", "one", "--provider", "onefile", "--device", e.serial(), "--file", file,
		"--device-path", "Settings", "--crash")
	put(t, filepath.Join(e.phone, "Settings", "settings.conf"), "from the phone", at(0))
	r := e.run("sync")
	logFile := filepath.Join(e.config, "logs", "cradle-provider-onefile.log")
	if r.code == 0 {
		t.Fatalf("sync with a crashing plugin: %v, want a failure", r)
	}
	for _, want := range []string{"provider onefile stopped: exit status 2 (last log: panic: told to crash when writing settings.conf)",
		"its log is " + logFile, "the next sync restarts it"} {
		if strings.Count(r.stderr, want) != 1 {
			t.Errorf("sync's stderr says %q %d times, want once:\n%s", want, strings.Count(r.stderr, want), r.stderr)
		}
	}
	if strings.Contains(r.stderr, "goroutine") || strings.Count(r.stderr, "\n") > 3 {
		t.Errorf("sync's stderr has the traceback, or more than the crash's line:\n%s", r.stderr)
	}
	if b, err := os.ReadFile(logFile); err != nil || !strings.Contains(string(b), "goroutine ") {
		t.Errorf("the plugin's log file %s = %q, %v; want the traceback", logFile, b, err)
	}
	st := e.ok("status")
	if !strings.Contains(st.stdout, "1 one: last sync failed: ") || !strings.Contains(st.stdout, "panic: told to crash") ||
		!strings.Contains(st.stdout, "its log is "+logFile+"; the next sync restarts it\n") {
		t.Errorf("status after the crash:\n%s\nwant one line with the panic, the log file and what to do", st.stdout)
	}
}
