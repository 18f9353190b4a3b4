package repl

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnflushed marks the error of a Sync or Resolve after which a store still holds changes that
// the handle file records as applied but that have not reached the store's replica (its Flush
// failed; they are durable, and the next Flush writes them). Until then the replica's metadata
// must not travel without its data: the manager does not export the device replica's snapshot.
var ErrUnflushed = errors.New("changes recorded but not yet written to the replica")

// The engine's side of Flusher: changes made durable before the records that say so are
// committed, and the stores flushed once the work is done.

// persist makes durable what the sides' stores took (Flusher.Persist), before the records of a
// batch are committed. The context is not cancelled with ctx: a batch that a cancellation cut
// short still commits what it applied, and so must make it durable first.
func persist(ctx context.Context, sides ...Side) error {
	ctx = context.WithoutCancel(ctx)
	for _, s := range sides {
		f, ok := s.Store.(Flusher)
		if !ok {
			continue
		}
		if err := f.Persist(ctx); err != nil {
			return &sideError{name: s.Name, err: fmt.Errorf("make the changes to %s durable: %w", s.Name, err)}
		}
	}
	return nil
}

// flush makes what the sides' stores deferred take effect on their replicas (Flusher.Flush), at
// the end of a session or a resolution, whether it went well or not. err is the error the work
// ended with: it is returned first (marked ErrUnflushed when a flush failed too); a flush error,
// marked ErrUnflushed, is returned when there was none.
func flush(ctx context.Context, err error, sides ...Side) error {
	for _, s := range sides {
		f, ok := s.Store.(Flusher)
		if !ok {
			continue
		}
		ferr := f.Flush(ctx)
		switch {
		case ferr == nil:
		case err == nil:
			err = &sideError{name: s.Name, err: Classify(fmt.Errorf("write the changes to %s: %w", s.Name, ferr), ErrUnflushed)}
		default:
			err = Classify(err, ErrUnflushed)
		}
	}
	return err
}
