package device

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"photo.jpg", true},
		{".hidden", true},
		{"...", true},
		{"a..b", true},
		{"Ünïcødé 写真 🎵.mp3", true},
		{"What?.mp3", true},
		{"CONSOLE.txt", true},
		{"COM0", true},
		{"COM10", true},
		{strings.Repeat("x", 255), true},
		{strings.Repeat("é", 127) + "x", true}, // 255 bytes

		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"/", false},
		{`a\b`, false},
		{`..\..\etc`, false},
		{"nul\x00byte", false},
		{"tab\there", false},
		{"line\nfeed", false},
		{"del\x7f", false},
		{"c1\u0085", false},
		{"\u202etxt.exe", false}, // shows as "exe.txt"
		{"a\u2066b\u2069.mp3", false},
		{"שלום.txt", true}, // right-to-left letters are names, not controls
		{"bad\xffutf8", false},
		{"CON", false},
		{"con", false},
		{"Con.txt", false},
		{"NUL.tar.gz", false},
		{"AUX ", false},
		{"com1", false},
		{"LPT9.log", false},
		{"CONIN$", false},
		{strings.Repeat("x", 256), false},
		{strings.Repeat("é", 128), false}, // 256 bytes
	}
	for _, tt := range tests {
		err := CheckName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrUnsafeName) {
			t.Errorf("CheckName(%q) = %v, want an error wrapping ErrUnsafeName", tt.name, err)
		}
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"/", "", true},
		{"DCIM/Camera/", "DCIM/Camera", true},
		{"/Music/a.mp3", "Music/a.mp3", true},
		{"a//b", "", false},
		{"a/../b", "", false},
		{"./a", "", false},
		{"a/CON/b", "", false},
	}
	for _, tt := range tests {
		got, err := CheckPath(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("CheckPath(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrUnsafeName) {
			t.Errorf("CheckPath(%q) = %v, want an error wrapping ErrUnsafeName", tt.in, err)
		}
	}
}

func TestSafeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"photo.jpg", "photo.jpg"},
		{"", "_"},
		{".", "_."},
		{"..", "_.."},
		{"a/b", "a_b"},
		{`..\..\x`, ".._.._x"},
		{"nul\x00", "nul_"},
		{"bad\xffutf8", "bad_utf8"},
		{"CON", "CON_"},
		{"con.txt", "con_.txt"},
		{"\u202etxt.exe", "_txt.exe"},
		{"AUX .x", "AUX_.x"},
	}
	for _, tt := range tests {
		if got := SafeName(tt.in); got != tt.want {
			t.Errorf("SafeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	long := strings.Repeat("長", 200) + ".jpeg"
	got := SafeName(long)
	if len(got) > MaxNameBytes || !strings.HasSuffix(got, ".jpeg") || CheckName(got) != nil {
		t.Errorf("SafeName(%d bytes) = %q (%d bytes), want a valid name under %d bytes ending .jpeg",
			len(long), got, len(got), MaxNameBytes)
	}
}

func FuzzSafeName(f *testing.F) {
	for _, s := range []string{"", ".", "..", "a/b", "CON", "x\x00y", "\xff", strings.Repeat("é", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		safe := SafeName(name)
		if err := CheckName(safe); err != nil {
			t.Fatalf("CheckName(SafeName(%q)) = %v, want nil (SafeName gave %q)", name, err, safe)
		}
		if CheckName(name) == nil && safe != name {
			t.Fatalf("SafeName(%q) = %q, want a valid name unchanged", name, safe)
		}
	})
}
