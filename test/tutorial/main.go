// Command tutorial follows docs/providers.md as a new provider author would, from empty folders
// outside the repository, and fails when the page's steps do not work. `make test-tutorial` runs
// it, and CI runs that.
//
// For each worked example of the page (notes, calendar) it makes a home folder of its own, with
// the repository as the clone the page asks for ($HOME/src/cradle) and a `cradle` on PATH that has
// an emulated phone attached (--emulate). It writes a little content on both sides, then runs, in
// the page's order, the shell blocks marked <!-- run: NAME --> and writes the files of the blocks
// marked <!-- file: examples/cradle-provider-NAME/... --> (what a reader types or pastes), with
// SERIAL replaced by the phone's serial. Then it edits both sides and checks that a sync brings
// every edit to the other side without a conflict. It prints how many commands and lines each
// example takes.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

var block = regexp.MustCompile("(?s)<!-- (run|file): (\\S+) -->\n```(?:sh|go)\n(.*?)```")

// example is one worked example of the page.
type example struct {
	name  string
	seed  func(t *trial) error // content on both sides before the page's steps
	check func(t *trial) error // edits on both sides after them, and what a sync must do
}

// trial is one example being followed: its folders and its environment.
type trial struct {
	repo, home, phone string
	env               []string
	serial            string
	commands, shown   int // the page's commands and lines of code for this example
}

func main() {
	repo := flag.String("repo", ".", "the repository: the clone the page builds against")
	keep := flag.Bool("keep", false, "keep the work folder")
	flag.Parse()
	if err := run(*repo, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "tutorial:", err)
		os.Exit(1)
	}
}

func run(repoArg string, keep bool) error {
	repo, err := filepath.Abs(repoArg)
	if err != nil {
		return err
	}
	doc, err := os.ReadFile(filepath.Join(repo, "docs", "providers.md"))
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "cradle-tutorial-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("tutorial: work folder", work)
	} else {
		defer os.RemoveAll(work)
	}
	start := time.Now()
	cradle := filepath.Join(work, "cradle")
	build := exec.Command("go", "build", "-o", cradle, ".")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build cradle: %v\n%s", err, out)
	}
	goEnv, err := goEnvironment()
	if err != nil {
		return err
	}
	for _, ex := range []example{notes, calendar} {
		t0 := time.Now()
		t, err := newTrial(work, repo, cradle, ex.name, goEnv)
		if err != nil {
			return err
		}
		if err := ex.seed(t); err != nil {
			return fmt.Errorf("%s: %w", ex.name, err)
		}
		if err := t.follow(string(doc), ex.name); err != nil {
			return fmt.Errorf("%s: %w", ex.name, err)
		}
		if err := ex.check(t); err != nil {
			return fmt.Errorf("%s: %w", ex.name, err)
		}
		fmt.Printf("tutorial: %s: %d commands and %d lines of code shown on the page; followed and checked in %s\n",
			ex.name, t.commands, t.shown, time.Since(t0).Round(time.Second))
	}
	fmt.Printf("tutorial: docs/providers.md followed from empty folders in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// goEnvironment keeps the Go caches and settings of this environment for the trials, whose HOME
// is elsewhere.
func goEnvironment() ([]string, error) {
	out, err := exec.Command("go", "env", "-json", "GOPATH", "GOMODCACHE", "GOCACHE", "GOFLAGS", "GOPROXY", "GOSUMDB", "GOTOOLCHAIN").Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %w", err)
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, err
	}
	var env []string
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	return env, nil
}

func newTrial(work, repo, cradle, name string, goEnv []string) (*trial, error) {
	t := &trial{repo: repo, home: filepath.Join(work, name, "home"), phone: filepath.Join(work, name, "phone")}
	for _, d := range []string{filepath.Join(t.home, "src"), filepath.Join(t.home, "bin"), t.phone} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// The clone the page asks for.
	if err := os.Symlink(repo, filepath.Join(t.home, "src", "cradle")); err != nil {
		return nil, err
	}
	// `cradle`, with the emulated phone attached.
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %q --emulate %q \"$@\"\n", cradle, t.phone)
	if err := os.WriteFile(filepath.Join(t.home, "bin", "cradle"), []byte(wrapper), 0o755); err != nil {
		return nil, err
	}
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "HOME", "PATH", "XDG_CONFIG_HOME", "PWD":
		default:
			t.env = append(t.env, kv)
		}
	}
	t.env = append(t.env, goEnv...)
	t.env = append(t.env, "HOME="+t.home, "PATH="+filepath.Join(t.home, "bin")+":"+os.Getenv("PATH"))
	var devs []struct{ Serial string }
	out, err := t.cradle("devices", "--json")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(out), &devs); err != nil || len(devs) != 1 {
		return nil, fmt.Errorf("cradle devices --json = %q (%v), want the emulated phone", out, err)
	}
	t.serial = devs[0].Serial
	return t, nil
}

// follow runs the page's steps for the example name, in its order, in the home folder.
func (t *trial) follow(doc, name string) error {
	var script strings.Builder
	script.WriteString("set -euo pipefail\nset -x\n")
	for _, m := range block.FindAllStringSubmatch(doc, -1) {
		kind, tag, body := m[1], m[2], m[3]
		switch {
		case kind == "run" && tag == name:
			for _, l := range strings.Split(body, "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					t.commands++
				}
			}
			script.WriteString(strings.ReplaceAll(body, "SERIAL", t.serial))
		case kind == "file" && strings.HasPrefix(tag, "examples/cradle-provider-"+name+"/"):
			t.shown += strings.Count(body, "\n")
			fmt.Fprintf(&script, "cat > %s <<'CRADLE_TUTORIAL_EOF'\n%sCRADLE_TUTORIAL_EOF\n", filepath.Base(tag), body)
		}
	}
	if t.commands == 0 {
		return fmt.Errorf("the page has no steps marked <!-- run: %s -->", name)
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir, cmd.Env = t.home, t.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("the page's steps failed: %v\n%s", err, out.String())
	}
	return nil
}

// cradle runs the cradle command as the page's reader does.
func (t *trial) cradle(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(t.home, "bin", "cradle"), args...)
	cmd.Dir, cmd.Env = t.home, t.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cradle %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// syncMerged syncs the partnership and fails unless it finished without a conflict.
func (t *trial) syncMerged(name string) error {
	if _, err := t.cradle("sync", name); err != nil {
		return err
	}
	out, err := t.cradle("conflicts", "--json")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "[]" {
		return fmt.Errorf("the sync left conflicts: %s", out)
	}
	return nil
}

// put writes a file, with a modification time after every earlier one (an edit shows even on a
// device that keeps whole seconds).
func put(path, content string, step int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return err
	}
	mt := time.Now().Add(time.Duration(step) * 2 * time.Second)
	return os.Chtimes(path, mt, mt)
}

// has fails unless the file at path holds every one of want.
func has(path string, want ...string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, w := range want {
		if !strings.Contains(string(b), w) {
			return fmt.Errorf("%s does not hold %q:\n%s", path, w, b)
		}
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

var notes = example{
	name: "notes",
	seed: func(t *trial) error {
		return firstErr(
			put(filepath.Join(t.home, "Notes", "groceries.md"), "# Groceries\n- milk\n", 0),
			put(filepath.Join(t.phone, "Notes", "ideas.md"), "# Ideas\n- a boat\n", 0))
	},
	check: func(t *trial) error {
		desk, phone := filepath.Join(t.home, "Notes"), filepath.Join(t.phone, "Notes")
		if err := firstErr(has(filepath.Join(phone, "groceries.md"), "- milk"), has(filepath.Join(desk, "ideas.md"), "- a boat")); err != nil {
			return fmt.Errorf("after the page's first sync: %w", err)
		}
		if err := firstErr(
			put(filepath.Join(desk, "groceries.md"), "# Groceries\n- milk\n- bread\n", 1),
			put(filepath.Join(phone, "ideas.md"), "# Ideas\n- a boat\n- a garden\n", 2)); err != nil {
			return err
		}
		if err := t.syncMerged("notes"); err != nil {
			return err
		}
		return firstErr(has(filepath.Join(phone, "groceries.md"), "- bread"), has(filepath.Join(desk, "ideas.md"), "- a garden"))
	},
}

// vevent is a calendar with one event, as a calendar program writes it.
func vevent(uid, start, summary, extra string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tutorial//EN\r\nBEGIN:VEVENT\r\nUID:" + uid +
		"\r\nDTSTAMP:20260301T080000Z\r\nDTSTART:" + start + "\r\nSUMMARY:" + summary + "\r\n" + extra + "END:VEVENT\r\nEND:VCALENDAR\r\n"
}

var calendar = example{
	name: "calendar",
	seed: func(t *trial) error {
		desk := filepath.Join(t.home, "Calendar")
		return firstErr(
			put(filepath.Join(desk, "dentist.ics"), vevent("dentist@example.org", "20260302T090000Z", "Dentist", ""), 0),
			put(filepath.Join(desk, "lunch.ics"), vevent("lunch@example.org", "20260303T120000Z", "Lunch with Ada", ""), 0),
			// The phone's calendar app has its own event, in its one file.
			put(filepath.Join(t.phone, "Calendar", "calendar.ics"), vevent("standup@example.org", "20260304T091500Z", "Stand-up", ""), 0))
	},
	check: func(t *trial) error {
		desk, phoneFile := filepath.Join(t.home, "Calendar"), filepath.Join(t.phone, "Calendar", "calendar.ics")
		if err := firstErr(has(phoneFile, "UID:dentist@example.org", "UID:lunch@example.org", "UID:standup@example.org"),
			has(filepath.Join(desk, "standup@example.org.ics"), "SUMMARY:Stand-up")); err != nil {
			return fmt.Errorf("after the page's first sync: %w", err)
		}
		// The computer renames the dentist; the phone moves it to the afternoon, gives it a
		// place, and moves the lunch: two fields of one event, and another event.
		if err := put(filepath.Join(desk, "dentist.ics"), vevent("dentist@example.org", "20260302T090000Z", "Dentist (Dr Who)", ""), 1); err != nil {
			return err
		}
		b, err := os.ReadFile(phoneFile)
		if err != nil {
			return err
		}
		phone := strings.Replace(string(b), "DTSTART:20260302T090000Z", "DTSTART:20260302T140000Z\r\nLOCATION:12 Baker Street", 1)
		phone = strings.Replace(phone, "DTSTART:20260303T120000Z", "DTSTART:20260303T123000Z", 1)
		if phone == string(b) {
			return fmt.Errorf("the phone's file is not as the first sync should have written it:\n%s", b)
		}
		if err := put(phoneFile, phone, 2); err != nil {
			return err
		}
		if err := t.syncMerged("calendar"); err != nil {
			return err
		}
		return firstErr(
			has(filepath.Join(desk, "dentist.ics"), "SUMMARY:Dentist (Dr Who)", "DTSTART:20260302T140000Z", "LOCATION:12 Baker Street"),
			has(filepath.Join(desk, "lunch.ics"), "DTSTART:20260303T123000Z"),
			has(phoneFile, "SUMMARY:Dentist (Dr Who)", "DTSTART:20260302T140000Z", "LOCATION:12 Baker Street"))
	},
}
