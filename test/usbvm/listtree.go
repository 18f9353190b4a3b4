package usbvm

import (
	"fmt"
	"os"
	"path/filepath"
)

// ListDir is the folder of `make bench-usb`'s listing benchmark in the device's root: folders
// folders of files small files each (WriteListTree).
const ListDir = "bench-list"

// WriteListTree makes the listing fixture under root: ListDir/folder-NNN/file-NNN-MMM.txt, each
// file a line of text. The host writes it into QEMU's usb-mtp folder; the guest into
// uMTP-Responder's storage.
func WriteListTree(root string, folders, files int) error {
	for i := range folders {
		dir := filepath.Join(root, ListDir, fmt.Sprintf("folder-%03d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for j := range files {
			name := fmt.Sprintf("file-%03d-%03d.txt", i, j)
			if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "listing fixture %d/%d\n", i, j), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
