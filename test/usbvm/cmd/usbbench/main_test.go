package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplaceBlocks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "doc.md")
	doc := "# Title\n\nProse.\n\n" + block{"transfer", "old table\n"}.marked() + "\nMore prose.\n"
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	out := block{"transfer", "new table"}.marked() + block{"listing-umtp", "listing table"}.marked()
	blocks := parseBlocks(out)
	if len(blocks) != 2 || blocks[0].name != "transfer" || blocks[1].name != "listing-umtp" {
		t.Fatalf("parseBlocks = %+v, want transfer and listing", blocks)
	}
	if err := replaceBlocks(p, blocks); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{"# Title\n\nProse.\n\n<!-- usbbench:transfer -->\n\nnew table\n\n<!-- /usbbench:transfer -->\n\nMore prose.\n", "<!-- usbbench:listing-umtp -->\n\nlisting table\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("replaceBlocks wrote\n%s\nwant it to contain\n%s", s, want)
		}
	}
	if strings.Contains(s, "old table") {
		t.Errorf("replaceBlocks kept the old block:\n%s", s)
	}
	// Again: the listing block is replaced in place, not appended twice.
	if err := replaceBlocks(p, []block{{"listing-umtp", "second"}}); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(p)
	if n := strings.Count(string(got), "<!-- usbbench:listing-umtp -->"); n != 1 || !strings.Contains(string(got), "second") {
		t.Errorf("after a second replace: %d listing blocks:\n%s", n, got)
	}
}
