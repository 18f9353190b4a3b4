package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cradle-sync/cradle/providers/plugin"
)

// docs/providers.md, step 8, walks through this example: it shows main.go and device.go word for
// word (the notes example's test checks every file block of the page), an excerpt of the tests,
// and has the reader copy the other files from here.

const tutorial = "../../docs/providers.md"

var excerptBlock = regexp.MustCompile("(?s)<!-- excerpt: (\\S+) -->\n```go\n(.*?)```")

func TestTutorialShowsTheCalendar(t *testing.T) {
	b, err := os.ReadFile(tutorial)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f == "docs_test.go" {
			continue
		}
		shown := strings.Contains(doc, "<!-- file: examples/cradle-provider-calendar/"+f+" -->")
		copied := regexp.MustCompile(`cp \$HOME/src/cradle/examples/cradle-provider-calendar/\{[^}]*\b` + regexp.QuoteMeta(strings.TrimSuffix(f, ".go")) + `\b[^}]*\}\.go \.`).MatchString(doc)
		if !shown && !copied {
			t.Errorf("the tutorial neither shows nor copies %s: a reader could not build the plugin", f)
		}
	}
	for _, m := range excerptBlock.FindAllStringSubmatch(doc, -1) {
		whole, err := os.ReadFile(filepath.Join("../..", m[1]))
		if err != nil {
			t.Errorf("the tutorial quotes %s, which cannot be read: %v", m[1], err)
			continue
		}
		if !strings.Contains(string(whole), m[2]) {
			t.Errorf("the tutorial's excerpt of %s is not in the file:\n%s", m[1], m[2])
		}
	}
}

func TestTutorialBuildsTheCalendarPlugin(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "cradle-provider-calendar")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build, as the tutorial says: %v\n%s", err, out)
	}
	p, err := plugin.NewHost(plugin.Config{}).Load(context.Background(), bin)
	if err != nil {
		t.Fatalf("Cradle cannot load the tutorial's plugin: %v", err)
	}
	doc, err := os.ReadFile(tutorial)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "cradle partner add --name calendar --provider "+p.Name+" ") {
		t.Errorf("the tutorial's partner add does not use the declared provider name %q", p.Name)
	}
}
