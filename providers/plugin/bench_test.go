//go:build unix

package plugin

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

// BenchmarkStore measures what the process boundary costs: each operation runs on the same store
// directly (the baseline) and through a plugin process, in the same run. Compare the pairs:
//
//	go test -run XXX -bench Store -count 6 ./providers/plugin/
func BenchmarkStore(b *testing.B) {
	p := loadSelf(b, quietHost(), "crashy")
	inst, err := p.Open(context.Background(), providers.Env{})
	if err != nil {
		b.Fatal(err)
	}
	defer inst.Close()
	stores := []struct {
		name string
		st   repl.Store
	}{{"direct", crashyProbe()}, {"plugin", inst.Desktop}}
	ctx := context.Background()
	payload := randomBytes(1 << 20)

	for _, s := range stores {
		b.Run("Open4MiB/"+s.name, func(b *testing.B) {
			b.SetBytes(4 << 20)
			for b.Loop() {
				rc, err := s.st.Open(ctx, "big.bin")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
	for _, s := range stores {
		b.Run("Write1MiB/"+s.name, func(b *testing.B) {
			b.SetBytes(1 << 20)
			for b.Loop() {
				if _, err := s.st.Write(ctx, repl.WriteRequest{Name: "w.bin", Size: 1 << 20, Data: bytes.NewReader(payload)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, s := range stores {
		b.Run("IsItemChanged/"+s.name, func(b *testing.B) {
			e := repl.Entry{Handle: "dir/item-0001.txt", Size: 1}
			for b.Loop() {
				if _, err := s.st.IsItemChanged(ctx, e, e.Stamp()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, s := range stores {
		b.Run("Enumerate2000/"+s.name, func(b *testing.B) {
			for b.Loop() {
				it, err := s.st.Enumerate(ctx)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					e, err := it.Next(ctx)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					s.st.IsItemReplicated(e)
					n++
				}
				it.Close()
				if n != 2000 {
					b.Fatalf("enumerated %d items, want 2000", n)
				}
			}
		})
	}
}
