package providers

import (
	"context"
	"testing"

	"github.com/cradle-sync/cradle/device/folder"
)

func TestParseDevicePath(t *testing.T) {
	dev, err := folder.Open(t.TempDir(), folder.Options{Logf: func(string, ...any) {}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	desc := dev.Info().Model
	tests := []struct {
		spec    string
		path    string
		wantErr bool
	}{
		{"Music", "Music", false},
		{"/Music/Live/", "Music/Live", false},
		{"1:Music", "Music", false},
		{"0x1:Music", "Music", false},
		{desc + ":Books", "Books", false},
		{"Concerts: 2024", "Concerts: 2024", false}, // no storage by that name: part of the path
		{"Music/../etc", "", true},
		{"CON/x", "", true},
	}
	for _, tt := range tests {
		st, p, err := ParseDevicePath(context.Background(), dev, tt.spec)
		if (err != nil) != tt.wantErr || (!tt.wantErr && (p != tt.path || st != folder.Storage)) {
			t.Errorf("ParseDevicePath(%q) = %d, %q, %v; want %q (error %v)", tt.spec, st, p, err, tt.path, tt.wantErr)
		}
	}
}
