package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cradle-sync/cradle/providers/plugin"
)

// docs/providers.md, "Writing a provider", walks through this example. These tests keep the two
// together: the tutorial shows the example's files word for word, and the program it builds is a
// plugin that Cradle loads, with the provider name and options the tutorial uses.

const tutorial = "../../docs/providers.md"

var fileBlock = regexp.MustCompile("(?s)<!-- file: (\\S+) -->\n```go\n(.*?)```")

var update = flag.Bool("update", false, "copy the example's files into the tutorial's file blocks")

func TestTutorialShowsTheExampleFiles(t *testing.T) {
	doc, err := os.ReadFile(tutorial)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		doc = fileBlock.ReplaceAllFunc(doc, func(block []byte) []byte {
			path := fileBlock.FindSubmatch(block)[1]
			content, err := os.ReadFile(filepath.Join("../..", string(path)))
			if err != nil {
				t.Fatal(err)
			}
			return []byte("<!-- file: " + string(path) + " -->\n```go\n" + string(content) + "```")
		})
		if err := os.WriteFile(tutorial, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shown := map[string]bool{}
	for _, m := range fileBlock.FindAllStringSubmatch(string(doc), -1) {
		path, block := m[1], m[2]
		shown[path] = true
		want, err := os.ReadFile(filepath.Join("../..", path))
		if err != nil {
			t.Errorf("the tutorial shows %s, which does not exist: %v", path, err)
			continue
		}
		if block != string(want) {
			t.Errorf("the tutorial's %s differs from the file; run: go test -run TestTutorialShowsTheExampleFiles -update ./examples/cradle-provider-notes", path)
		}
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f == "docs_test.go" {
			continue
		}
		if p := "examples/cradle-provider-notes/" + f; !shown[p] {
			t.Errorf("the tutorial does not show %s: a reader could not build the plugin", p)
		}
	}
}

func TestTutorialBuildsAPlugin(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "cradle-provider-notes")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build, as the tutorial says: %v\n%s", err, out)
	}

	// Run by hand, it says what it is.
	var stderr strings.Builder
	cmd := exec.Command(bin)
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), `is a Cradle provider plugin (provider "notes")`) {
		t.Errorf("running the plugin by hand = %v, %q; want exit status 1 and what it is", err, stderr.String())
	}

	// Cradle loads it, with what the tutorial tells the user to type.
	p, err := plugin.NewHost(plugin.Config{}).Load(context.Background(), bin)
	if err != nil {
		t.Fatalf("Cradle cannot load the tutorial's plugin: %v", err)
	}
	doc, err := os.ReadFile(tutorial)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "cradle partner add --name notes --provider "+p.Name+" ") {
		t.Errorf("the tutorial's partner add does not use the declared provider name %q", p.Name)
	}
	for _, o := range p.Options {
		if !strings.Contains(string(doc), "--"+o.Name) {
			t.Errorf("the tutorial never mentions option --%s", o.Name)
		}
	}
}
