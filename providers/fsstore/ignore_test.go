package fsstore

import (
	"strings"
	"testing"
)

func TestBuiltinIgnored(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{TempPrefix + "ABCDEF", true},
		{".cradle", true},
		{"report.txt~", true},
		{".report.txt.swp", true},
		{".report.txt.swo", true},
		{"notes.swp", true},
		{".#notes.org", true},
		{"#notes.org#", true},
		{".~lock.budget.ods#", true},
		{"~$budget.docx", true},
		{".goutputstream-XYZ123", true},
		{"video.mp4.part", true},
		{"setup.exe.crdownload", true},
		{".DS_Store", true},
		{"._photo.jpg", true},
		{".Trash-1000", true},
		{".Trashes", true},
		{".Spotlight-V100", true},
		{".fseventsd", true},
		{"Thumbs.db", true},
		{"ehthumbs.db", true},
		{"desktop.ini", true},
		{"System Volume Information", true},
		{"$RECYCLE.BIN", true},

		{"report.txt", false},
		{".bashrc", false},
		{".git", false},
		{"#hashtag", false},
		{"~tilde-start", false},
		{"swp", false},
		{".swp", true}, // Vim names a swap file so when the buffer has no name
		{"partner.txt", false},
		{"thumbs.db.bak", false},
		{"Desktop.ini.txt", false},
		{"photo.jpg", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := BuiltinIgnored(tt.name); got != tt.want {
			t.Errorf("BuiltinIgnored(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestIgnorer(t *testing.T) {
	ig, err := NewIgnorer(ParsePatterns("*.log, build/, cache/*.tmp , node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rel  string
		dir  bool
		want bool
	}{
		{"app.log", false, true},
		{"deep/er/app.log", false, true},
		{"app.log.txt", false, false},
		{"build", true, true},
		{"build", false, false}, // folders only
		{"src/build", true, true},
		{"build/out.o", false, true}, // inside an ignored folder
		{"cache/x.tmp", false, true},
		{"other/cache/x.tmp", false, false}, // a pattern with '/' is anchored at the top
		{"cache/x.txt", false, false},
		{"web/node_modules/pkg/index.js", false, true},
		{"docs/readme.md", false, false},
		{"docs/.DS_Store", false, true}, // built-in rules always apply
		{".cradle/state", false, true},
	}
	for _, tt := range tests {
		if got := ig.Ignored(tt.rel, tt.dir); got != tt.want {
			t.Errorf("Ignored(%q, dir=%v) = %v, want %v", tt.rel, tt.dir, got, tt.want)
		}
	}
	if got := ig.IgnoredName("src", "build", true); !got {
		t.Errorf("IgnoredName(src, build, dir) = false, want true")
	}
	if got := ig.IgnoredName("", "cache", true); got {
		t.Errorf("IgnoredName(\"\", cache, dir) = true, want false")
	}
	if got := ig.IgnoredName("cache", "y.tmp", false); !got {
		t.Errorf("IgnoredName(cache, y.tmp) = false, want true")
	}
}

func TestIgnorerBadPattern(t *testing.T) {
	_, err := NewIgnorer([]string{"[abc"})
	if err == nil || !strings.Contains(err.Error(), `"[abc"`) {
		t.Errorf("NewIgnorer([abc) = %v, want an error naming the pattern", err)
	}
}

// TestIgnorerGitignoreRules checks the rules users know from .gitignore.
func TestIgnorerGitignoreRules(t *testing.T) {
	tests := []struct {
		patterns string
		rel      string
		dir      bool
		want     bool
	}{
		// A leading '/' (or "./") anchors a pattern at the top of the partnership's folder.
		{"/todo.txt", "todo.txt", false, true},
		{"/todo.txt", "notes/todo.txt", false, false},
		{"./todo.txt", "todo.txt", false, true},
		{"./todo.txt", "notes/todo.txt", false, false},
		{"/build/", "build", true, true},
		{"/build/", "src/build", true, false},
		{"/build/", "build/x.o", false, true},
		// A '/' in the middle anchors too; without one a name matches at any depth.
		{"doc/*.txt", "doc/a.txt", false, true},
		{"doc/*.txt", "x/doc/a.txt", false, false},
		{"doc/*.txt", "doc/sub/a.txt", false, false},
		{"tmp", "a/b/tmp", false, true},
		// "**" matches any number of folders.
		{"**/logs", "logs", true, true},
		{"**/logs", "a/b/logs", true, true},
		{"**/logs/*.log", "a/logs/x.log", false, true},
		{"docs/**", "docs/a/b.md", false, true},
		{"docs/**", "docs", true, false},
		{"a/**/b", "a/b", false, true},
		{"a/**/b", "a/x/y/b", false, true},
		{"a/**/b", "c/a/x/b", false, false},
		// '!' takes a pattern back; the last matching pattern decides.
		{"*.log, !keep.log", "keep.log", false, false},
		{"*.log, !keep.log", "drop.log", false, true},
		{"!keep.log, *.log", "keep.log", false, true},
		// Nothing inside an ignored folder can be taken back.
		{"cache/, !cache/keep.txt", "cache/keep.txt", false, true},
		// Comments and escapes.
		{"#notes", "#notes", false, false},
		{`\#notes`, "#notes", false, true},
		{`\!bang`, "!bang", false, true},
	}
	for _, tt := range tests {
		ig, err := NewIgnorer(ParsePatterns(tt.patterns))
		if err != nil {
			t.Fatalf("NewIgnorer(%q): %v", tt.patterns, err)
		}
		if got := ig.Ignored(tt.rel, tt.dir); got != tt.want {
			t.Errorf("patterns %q: Ignored(%q, dir %v) = %v, want %v", tt.patterns, tt.rel, tt.dir, got, tt.want)
		}
		// A walk asks one name at a time, inside folders it kept.
		parent, name := "", tt.rel
		if i := strings.LastIndexByte(tt.rel, '/'); i >= 0 {
			parent, name = tt.rel[:i], tt.rel[i+1:]
		}
		if !ig.Ignored(parent, true) || parent == "" {
			if got := ig.IgnoredName(parent, name, tt.dir); got != tt.want {
				t.Errorf("patterns %q: IgnoredName(%q, %q, dir %v) = %v, want %v", tt.patterns, parent, name, tt.dir, got, tt.want)
			}
		}
	}
	for _, bad := range []string{"/", "./", "a/../b", "[x"} {
		if _, err := NewIgnorer([]string{bad}); err == nil {
			t.Errorf("NewIgnorer(%q) accepted a pattern that matches nothing or is malformed", bad)
		}
	}
}
