package plugin

import (
	"fmt"
	"time"

	"github.com/cradle-sync/cradle/providers/plugin/internal/pb"
	"github.com/cradle-sync/cradle/repl"
)

// Conversions between repl's types and the wire. The *FromPB functions check what they decode: a
// message from the other process is input, and a faulty plugin must produce an error, not an
// entry the engine would trust.

func timeToPB(t time.Time) *pb.Time {
	if t.IsZero() {
		return nil
	}
	return &pb.Time{Seconds: t.Unix(), Nanos: int32(t.Nanosecond())}
}

func timeFromPB(t *pb.Time) (time.Time, error) {
	if t == nil {
		return time.Time{}, nil
	}
	if t.GetNanos() < 0 || t.GetNanos() >= 1e9 {
		return time.Time{}, fmt.Errorf("time has %d nanoseconds", t.GetNanos())
	}
	return time.Unix(t.GetSeconds(), int64(t.GetNanos())), nil
}

func kindToPB(k repl.Kind) pb.Kind {
	if k == repl.KindFolder {
		return pb.Kind_KIND_FOLDER
	}
	return pb.Kind_KIND_FILE
}

func kindFromPB(k pb.Kind) (repl.Kind, error) {
	switch k {
	case pb.Kind_KIND_FILE:
		return repl.KindFile, nil
	case pb.Kind_KIND_FOLDER:
		return repl.KindFolder, nil
	}
	return 0, fmt.Errorf("unknown item kind %d", k)
}

func entryToPB(e repl.Entry) *pb.Entry {
	return &pb.Entry{
		Handle:  []byte(e.Handle),
		Kind:    kindToPB(e.Kind),
		Size:    e.Size,
		ModTime: timeToPB(e.ModTime),
		Hash:    []byte(e.Hash),
	}
}

func entryFromPB(p *pb.Entry) (repl.Entry, error) {
	if p == nil {
		return repl.Entry{}, fmt.Errorf("missing entry")
	}
	k, err := kindFromPB(p.GetKind())
	if err != nil {
		return repl.Entry{}, err
	}
	if len(p.GetHandle()) == 0 {
		return repl.Entry{}, fmt.Errorf("entry without a handle")
	}
	if p.GetSize() < 0 {
		return repl.Entry{}, fmt.Errorf("entry %q has negative size %d", p.GetHandle(), p.GetSize())
	}
	mt, err := timeFromPB(p.GetModTime())
	if err != nil {
		return repl.Entry{}, fmt.Errorf("entry %q: %w", p.GetHandle(), err)
	}
	return repl.Entry{Handle: string(p.GetHandle()), Kind: k, Size: p.GetSize(), ModTime: mt, Hash: string(p.GetHash())}, nil
}

func stampToPB(s repl.Stamp) *pb.Stamp {
	return &pb.Stamp{Kind: kindToPB(s.Kind), Size: s.Size, ModTime: s.ModTime, Hash: []byte(s.Hash)}
}

func stampFromPB(p *pb.Stamp) (repl.Stamp, error) {
	if p == nil {
		return repl.Stamp{}, fmt.Errorf("missing stamp")
	}
	k, err := kindFromPB(p.GetKind())
	if err != nil {
		return repl.Stamp{}, err
	}
	return repl.Stamp{Kind: k, Size: p.GetSize(), ModTime: p.GetModTime(), Hash: string(p.GetHash())}, nil
}

func notifyKindToPB(k repl.NotifyKind) pb.NotifyKind {
	switch k {
	case repl.ItemCreated:
		return pb.NotifyKind_NOTIFY_CREATED
	case repl.ItemModified:
		return pb.NotifyKind_NOTIFY_MODIFIED
	case repl.ItemDeleted:
		return pb.NotifyKind_NOTIFY_DELETED
	case repl.Overflow:
		return pb.NotifyKind_NOTIFY_OVERFLOW
	case repl.Shutdown:
		return pb.NotifyKind_NOTIFY_SHUTDOWN
	}
	return pb.NotifyKind_NOTIFY_UNSPECIFIED
}

func notifyKindFromPB(k pb.NotifyKind) (repl.NotifyKind, error) {
	switch k {
	case pb.NotifyKind_NOTIFY_CREATED:
		return repl.ItemCreated, nil
	case pb.NotifyKind_NOTIFY_MODIFIED:
		return repl.ItemModified, nil
	case pb.NotifyKind_NOTIFY_DELETED:
		return repl.ItemDeleted, nil
	case pb.NotifyKind_NOTIFY_OVERFLOW:
		return repl.Overflow, nil
	case pb.NotifyKind_NOTIFY_SHUTDOWN:
		return repl.Shutdown, nil
	}
	return 0, fmt.Errorf("unknown notification kind %d", k)
}

func notificationToPB(n repl.Notification) *pb.Notification {
	out := &pb.Notification{Kind: notifyKindToPB(n.Kind), Handle: []byte(n.Handle)}
	if n.Err != nil {
		out.Error, _ = storeErrorToPB(n.Err)
	}
	return out
}

func notificationFromPB(p *pb.Notification) (repl.Notification, error) {
	k, err := notifyKindFromPB(p.GetKind())
	if err != nil {
		return repl.Notification{}, err
	}
	n := repl.Notification{Kind: k, Handle: string(p.GetHandle())}
	if (k == repl.ItemCreated || k == repl.ItemModified || k == repl.ItemDeleted) && n.Handle == "" {
		return repl.Notification{}, fmt.Errorf("%s notification without a handle", k)
	}
	if p.GetError() != nil {
		n.Err = storeErrorFromPB(p.GetError(), nil)
	}
	return n, nil
}

func unitsToPB(u repl.Units) map[string][]byte {
	if u == nil {
		return nil
	}
	out := make(map[string][]byte, len(u))
	for k, v := range u {
		out[k] = v
	}
	return out
}

func unitsFromPB(m map[string][]byte) repl.Units {
	out := make(repl.Units, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
