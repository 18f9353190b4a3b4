package plugin

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
	"unicode/utf8"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/plugin/internal/pb"
	"github.com/cradle-sync/cradle/repl"
)

// The host decodes what a plugin sends: statuses with error details, entries, notifications,
// declarations. A faulty or hostile plugin must get an error, never a panic or an entry the engine
// would trust. Plain `go test` runs the seeds; `go test -fuzz=FuzzX` runs a campaign.

func statusBytes(err error) []byte {
	b, _ := proto.Marshal(status.Convert(toStatus(err)).Proto())
	return b
}

func FuzzFromStatus(f *testing.F) {
	for _, e := range []error{
		fmt.Errorf("write a.md: %w", repl.ErrChanged),
		fmt.Errorf("x: %w", errors.Join(repl.ErrNotFound, repl.ErrPermission)),
		context.DeadlineExceeded,
		errors.New("plain \xff failure"),
	} {
		f.Add(statusBytes(e))
	}
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x0e, 0x12, 0x03, 'b', 'y', 'e'})
	f.Fuzz(func(t *testing.T, data []byte) {
		var sp spb.Status
		if proto.Unmarshal(data, &sp) != nil {
			return
		}
		in := status.ErrorProto(&sp)
		if in == nil {
			return // code OK: not an error
		}
		out, _ := fromStatus(in)
		if out == nil {
			t.Fatalf("fromStatus(%v) = nil", in)
		}
		_ = out.Error()
		// Every sentinel the detail names is reachable with errors.Is.
		for _, d := range status.Convert(in).Details() {
			se, ok := d.(*pb.StoreError)
			if !ok {
				continue
			}
			for _, w := range se.GetSentinels() {
				for _, s := range sentinels {
					if s.wire == w && !errors.Is(out, s.err) {
						t.Errorf("fromStatus dropped sentinel %v", s.err)
					}
				}
			}
			break
		}
	})
}

func FuzzEntryRoundTrip(f *testing.F) {
	f.Add("notes/a.md", uint8(0), int64(12), int64(1700000000), int32(123456789), "")
	f.Add("bad-\xff\xfe", uint8(1), int64(0), int64(0), int32(0), "sha256:ab")
	f.Add("", uint8(0), int64(-1), int64(-62135596800), int32(0), "x")
	f.Fuzz(func(t *testing.T, handle string, kind uint8, size, sec int64, nsec int32, hash string) {
		e := repl.Entry{Handle: handle, Kind: repl.Kind(kind % 2), Size: size, Hash: hash}
		if nsec >= 0 && nsec < 1e9 && (sec != 0 || nsec != 0) {
			e.ModTime = time.Unix(sec, int64(nsec))
		}
		b, err := proto.Marshal(entryToPB(e))
		if err != nil {
			t.Fatalf("marshal %+v: %v", e, err)
		}
		var p pb.Entry
		if err := proto.Unmarshal(b, &p); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		got, err := entryFromPB(&p)
		if handle == "" || size < 0 {
			if err == nil {
				t.Errorf("entryFromPB accepted %+v", e)
			}
			return
		}
		if err != nil {
			t.Fatalf("entryFromPB(%+v) = %v", e, err)
		}
		if got.Handle != e.Handle || got.Kind != e.Kind || got.Size != e.Size || got.Hash != e.Hash ||
			!got.ModTime.Equal(e.ModTime) || got.Stamp() != e.Stamp() {
			t.Errorf("round trip of %+v = %+v", e, got)
		}
	})
}

func FuzzDecodeFromPlugin(f *testing.F) {
	entry, _ := proto.Marshal(entryToPB(repl.Entry{Handle: "a.md", Size: 3, ModTime: time.Unix(1, 2)}))
	note, _ := proto.Marshal(notificationToPB(repl.Notification{Kind: repl.Shutdown, Err: fmt.Errorf("gone: %w", repl.ErrGone)}))
	decl, _ := proto.Marshal(declarationToPB(Declaration{Name: "notes", Options: []providers.Option{{Name: "desktop", Kind: providers.KindFolder, Required: true}}}))
	f.Add(entry, note, decl)
	f.Add([]byte{0x10, 0x07}, []byte{0x08, 0x63}, []byte{0x0a, 0x01, 'X'})
	f.Fuzz(func(t *testing.T, entry, note, decl []byte) {
		var pe pb.Entry
		if proto.Unmarshal(entry, &pe) == nil {
			if e, err := entryFromPB(&pe); err == nil && (e.Handle == "" || e.Size < 0 || e.Kind > repl.KindFolder) {
				t.Errorf("entryFromPB accepted %+v", e)
			}
		}
		var pn pb.Notification
		if proto.Unmarshal(note, &pn) == nil {
			n, err := notificationFromPB(&pn)
			if err == nil && (n.Kind < repl.ItemCreated || n.Kind > repl.Shutdown) {
				t.Errorf("notificationFromPB accepted kind %d", n.Kind)
			}
			if err == nil && n.Kind <= repl.ItemDeleted && n.Handle == "" {
				t.Errorf("notificationFromPB accepted a %v without a handle", n.Kind)
			}
		}
		var pd pb.Declaration
		if proto.Unmarshal(decl, &pd) == nil {
			d := declarationFromPB(&pd)
			if d.check() == nil && (!nameRE.MatchString(d.Name) || !utf8.ValidString(d.Description)) {
				t.Errorf("check accepted the declaration %+v", d)
			}
		}
	})
}
