package device

import (
	"context"
	"errors"
	"io/fs"
)

// WalkList walks the tree below dir with list, which returns one folder's objects: fn is called
// for every object, parents before children, in list's order. fn returning fs.SkipDir skips a
// folder's contents (for a file, the rest of its folder); fs.SkipAll ends the walk without error.
// It serves the devices whose Walk is a List per folder.
func WalkList(ctx context.Context, list func(ctx context.Context, dir string) ([]Object, error), dir string, fn func(Object) error) error {
	err := walkList(ctx, list, dir, fn)
	if errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

func walkList(ctx context.Context, list func(ctx context.Context, dir string) ([]Object, error), dir string, fn func(Object) error) error {
	objs, err := list(ctx, dir)
	if err != nil {
		return err
	}
	for _, o := range objs {
		err := fn(o)
		if errors.Is(err, fs.SkipDir) {
			if o.Dir {
				continue
			}
			return nil
		}
		if err != nil {
			return err
		}
		if o.Dir {
			if err := walkList(ctx, list, o.Path, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
