package repl

import (
	"context"
	"fmt"
)

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
// ended with: it is returned first; a flush error is returned when there was none.
func flush(ctx context.Context, err error, sides ...Side) error {
	for _, s := range sides {
		f, ok := s.Store.(Flusher)
		if !ok {
			continue
		}
		if ferr := f.Flush(ctx); ferr != nil && err == nil {
			err = &sideError{name: s.Name, err: fmt.Errorf("write the changes to %s: %w", s.Name, ferr)}
		}
	}
	return err
}
