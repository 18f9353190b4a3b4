package contacts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/cradle-sync/cradle/repl"
)

// maxUID bounds a UID Cradle accepts as an item name.
const maxUID = 1024

// checkUID refuses a name that cannot be a card's UID (and so a new item's handle): empty,
// not UTF-8, too long, or holding control characters. The error wraps repl.ErrInvalidName.
func checkUID(uid string) error {
	switch {
	case strings.TrimSpace(uid) == "":
		return fmt.Errorf("a new contact needs a UID as its name: %w", repl.ErrInvalidName)
	case !utf8.ValidString(uid):
		return fmt.Errorf("UID %q is not valid UTF-8: %w", uid, repl.ErrInvalidName)
	case len(uid) > maxUID:
		return fmt.Errorf("UID %.40q... is longer than %d bytes: %w", uid, maxUID, repl.ErrInvalidName)
	case uid != strings.TrimSpace(uid):
		return fmt.Errorf("UID %q starts or ends with blanks: %w", uid, repl.ErrInvalidName)
	}
	for _, r := range uid {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("UID %q holds a control character: %w", uid, repl.ErrInvalidName)
		}
	}
	return nil
}

// incoming is the card a Write brings.
type incoming struct {
	card *card
	// raw is the data as sent when it is exactly one card (ending with a line break); a store
	// keeps it byte for byte when it is already in the version and with the UID it would write.
	raw []byte
}

// readIncoming reads and parses the single card a WriteRequest carries. A cancelled ctx, a
// failing reader and data shorter or longer than req.Size are errors (wrapping the cause).
func readIncoming(ctx context.Context, req repl.WriteRequest) (incoming, error) {
	if req.Kind != repl.KindFile || req.Data == nil {
		return incoming{}, fmt.Errorf("write contact %q: a contact is a card, not a folder: %w", req.Name, repl.ErrInvalidName)
	}
	data, err := io.ReadAll(io.LimitReader(req.Data, maxCardSize+1))
	if err != nil {
		return incoming{}, fmt.Errorf("write contact %q: read the card: %w", req.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return incoming{}, fmt.Errorf("write contact %q: %w", req.Name, err)
	}
	if len(data) > maxCardSize {
		return incoming{}, fmt.Errorf("write contact %q: card larger than %d MiB", req.Name, maxCardSize>>20)
	}
	if req.Size >= 0 && int64(len(data)) != req.Size {
		return incoming{}, fmt.Errorf("write contact %q: got %d bytes of the card, %d announced (the source changed or was cut short)", req.Name, len(data), req.Size)
	}
	c, err := parseSingle(data)
	if err != nil {
		return incoming{}, fmt.Errorf("write contact %q: %w", req.Name, err)
	}
	in := incoming{card: c}
	if segs := splitFile(data); len(segs) == 1 && segs[0].card {
		if !bytes.HasSuffix(data, []byte("\n")) {
			data = append(data, "\r\n"...)
		}
		in.raw = data
	}
	return in, nil
}

// build returns the bytes of the card to write as uid: the incoming bytes when they have that
// UID and a version keep accepts, else the card encoded in version with uid, the previous card's
// PRODID and a REV of req.ModTime.
func (in incoming) build(uid, version string, keep func(version string) bool, prev *card, req repl.WriteRequest) []byte {
	if in.raw != nil && keep(in.card.version) && in.card.uid() == uid {
		return in.raw
	}
	c := in.card
	c.setUID(uid)
	if prev != nil {
		if p := prev.fields.Get("PRODID"); p != nil {
			c.fields.Set("PRODID", p)
		}
	}
	if !req.ModTime.IsZero() {
		c.fields.SetValue("REV", req.ModTime.UTC().Format("20060102T150405Z"))
	}
	return c.encode(version)
}

// major is the major version of a card's VERSION value ('2', '3', '4'; 0 when it has none).
func major(version string) byte {
	if version == "" {
		return 0
	}
	return version[0]
}
