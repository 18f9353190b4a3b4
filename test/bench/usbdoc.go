package main

import (
	"fmt"
	"regexp"
	"strings"
)

// usbBlock returns the block usbbench wrote between <!-- usbbench:name --> and
// <!-- /usbbench:name --> in text (docs/performance-usb.md or usbbench's -o output), and whether
// there is one.
func usbBlock(text, name string) (string, bool) {
	begin, end := "<!-- usbbench:"+name+" -->", "<!-- /usbbench:"+name+" -->"
	i := strings.Index(text, begin)
	if i < 0 {
		return "", false
	}
	rest := text[i+len(begin):]
	j := strings.Index(rest, end)
	if j < 0 {
		return "", false
	}
	return strings.TrimSpace(rest[:j]), true
}

// usbBlocks returns every block whose name is prefix or starts with prefix and a '-' (the
// listing's blocks, one per device model: listing-qemu-xhci, listing-umtp), in file order.
func usbBlocks(text, prefix string) []string {
	var out []string
	for {
		i := strings.Index(text, "<!-- usbbench:"+prefix)
		if i < 0 {
			return out
		}
		rest := text[i+len("<!-- usbbench:"):]
		name, _, ok := strings.Cut(rest, " -->")
		if !ok {
			return out
		}
		text = rest
		if name != prefix && !strings.HasPrefix(name, prefix+"-") {
			continue
		}
		if b, ok := usbBlock("<!-- usbbench:"+rest, name); ok {
			out = append(out, b)
		}
	}
}

// ratioCell matches the ratio cell of usbbench's tables, such as "2.31x (>= 2.0x, met)".
var ratioCell = regexp.MustCompile(`^([0-9.]+x) \(([<>]=\s*[0-9.]+x), (met|missed)\)$`)

// tableRows turns the rows of one of usbbench's markdown tables whose ratio cell is column col
// into summary rows, made by mk from the row's cells, its ratio, goal and verdict.
func tableRows(table string, col int, mk func(cells []string, ratio, goal, verdict string) row) []row {
	var out []row
	for l := range strings.SplitSeq(table, "\n") {
		if !strings.HasPrefix(l, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		if len(cells) <= col {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		m := ratioCell.FindStringSubmatch(cells[col])
		if m == nil {
			continue
		}
		v := "met"
		if m[3] != "met" {
			v = "**missed**"
		}
		out = append(out, mk(cells, m[1], m[2], v))
	}
	return out
}

// listRows turns usbbench's listing table (| device | Cradle s | mtp-files s | ratio (goal) | ...)
// into summary rows.
func listRows(table string) []row {
	return tableRows(table, 3, func(cells []string, ratio, goal, verdict string) row {
		return row{
			what:     fmt.Sprintf("listing 10k objects over USB, %s", cells[0]),
			cradle:   cells[1] + " s",
			baseline: cells[2] + " s (`mtp-files`)",
			ratio:    ratio,
			goal:     goal + " faster",
			verdict:  verdict,
		}
	})
}
