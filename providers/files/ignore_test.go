package files

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
