package mtp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cradle-sync/cradle/device"
)

// Rename renames or moves an object inside one storage: MoveObject when the folder changes,
// SetObjectPropValue(ObjectFileName) when the name does. device.ErrUnsupported when the device
// offers neither as needed; device.ErrExists when to is taken.
func (d *Device) Rename(ctx context.Context, s device.StorageID, from, to string) error {
	from, err := device.CheckPath(from)
	if err == nil {
		to, err = device.CheckPath(to)
	}
	if err == nil {
		err = errors.Join(d.ptpGuard(from), d.ptpGuard(to))
	}
	if err == nil && (from == "" || to == "") {
		err = fmt.Errorf("cannot rename a storage root: %w", device.ErrUnsupported)
	}
	if err == nil && strings.HasPrefix(to+"/", from+"/") && to != from {
		err = fmt.Errorf("cannot move a folder into itself: %w", device.ErrUnsupported)
	}
	if err != nil {
		return fmt.Errorf("rename %q to %q on the device: %w", from, to, err)
	}
	if from == to {
		return nil
	}
	fromDir, fromName := splitPath(from)
	toDir, toName := splitPath(to)
	move, rename := fromDir != toDir, fromName != toName
	if (move && !d.devInfo.Supports(OpMoveObject)) || (rename && !d.devInfo.Supports(OpSetObjectPropValue)) {
		return fmt.Errorf("rename %q to %q on the device: %w", from, to, device.ErrUnsupported)
	}
	err = d.locked(ctx, func() error {
		n, err := d.resolve(ctx, s, from)
		if err != nil {
			return err
		}
		dst, err := d.resolve(ctx, s, toDir)
		if err != nil {
			return err
		}
		if !dst.dir {
			return fmt.Errorf("%s is not a folder: %w", toDir, device.ErrNotFound)
		}
		if ch, err := d.child(ctx, dst, toName); err != nil {
			return err
		} else if ch != nil {
			return device.ErrExists
		}
		if err := d.checkNew(ctx, dst, toName, n); err != nil {
			return err
		}
		plan, err := d.renamePlan(ctx, n, dst, toName, move, rename)
		if err != nil {
			return err
		}
		for i, st := range plan {
			if err := st.do(); err != nil {
				if i == 0 && isRefusal(err) {
					return fmt.Errorf("%w (%w)", device.ErrUnsupported, err)
				}
				for j := i - 1; j >= 0; j-- {
					if uerr := plan[j].undo(); uerr != nil {
						d.log.Warn("mtp: could not undo part of a failed rename", "from", from, "to", to, "err", uerr)
					}
				}
				return err
			}
		}
		d.cache.move(n, dst, toName)
		return nil
	})
	if err != nil {
		return fmt.Errorf("rename %q to %q on the device: %w", from, to, err)
	}
	return nil
}

// renameStep is one device operation of a rename, with the operation that undoes it.
type renameStep struct{ do, undo func() error }

// renamePlan orders the operations of a rename so that no step meets a name already taken:
// the new name is given before the move unless the source folder has an object of that name,
// in which case the move goes first, and if the target folder has one of the old name as well,
// the object passes through a temporary name.
func (d *Device) renamePlan(ctx context.Context, n, dst *node, toName string, move, rename bool) ([]renameStep, error) {
	h, fromName, src := n.handle, n.name, n.parent
	setName := func(name, undo string) renameStep {
		return renameStep{
			do:   func() error { return d.setProp(ctx, h, PropObjectFileName, StringValue(name)) },
			undo: func() error { return d.setProp(ctx, h, PropObjectFileName, StringValue(undo)) },
		}
	}
	moveTo := func(to, back *node) renameStep {
		param := func(n *node) uint32 {
			if n.isRoot() {
				return 0
			}
			return n.handle
		}
		return renameStep{
			do: func() error {
				_, err := d.conn.do(ctx, call{op: OpMoveObject, params: []uint32{h, uint32(n.storage), param(to)}})
				return err
			},
			undo: func() error {
				_, err := d.conn.do(ctx, call{op: OpMoveObject, params: []uint32{h, uint32(n.storage), param(back)}})
				return err
			},
		}
	}
	switch {
	case !move:
		return []renameStep{setName(toName, fromName)}, nil
	case !rename:
		return []renameStep{moveTo(dst, src)}, nil
	}
	srcHas, err := d.child(ctx, src, toName)
	if err != nil {
		return nil, err
	}
	if srcHas == nil {
		return []renameStep{setName(toName, fromName), moveTo(dst, src)}, nil
	}
	dstHas, err := d.child(ctx, dst, fromName)
	if err != nil {
		return nil, err
	}
	if dstHas == nil {
		return []renameStep{moveTo(dst, src), setName(toName, fromName)}, nil
	}
	tmp := fmt.Sprintf(".cradle-rename-%08x", h)
	return []renameStep{setName(tmp, fromName), moveTo(dst, src), setName(toName, tmp)}, nil
}
