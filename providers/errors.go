package providers

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/repl"
)

// The errors of the layers below, as the engine's sentinel errors (repl.ErrNotFound,
// repl.ErrNoSpace, ...): every store a provider implements wraps what the file system or the
// device said with the sentinel it means, keeping the original message.

// MapDeviceError wraps a device error with the repl sentinel it means (device.ErrNotFound ->
// repl.ErrNotFound, ErrDisconnected and ErrNotAnswering -> ErrGone, ErrUnsafeName and
// ErrNameNotAllowed -> ErrInvalidName, ...), keeping the device's message.
func MapDeviceError(err error) error {
	var target error
	switch {
	case errors.Is(err, device.ErrNotFound):
		target = repl.ErrNotFound
	case errors.Is(err, device.ErrExists):
		target = repl.ErrExists
	case errors.Is(err, device.ErrNotEmpty):
		target = repl.ErrNotEmpty
	case errors.Is(err, device.ErrNoSpace):
		target = repl.ErrNoSpace
	case errors.Is(err, device.ErrReadOnly):
		target = repl.ErrReadOnly
	case errors.Is(err, device.ErrPermission):
		target = repl.ErrPermission
	case errors.Is(err, device.ErrDisconnected), errors.Is(err, device.ErrNotAnswering):
		// A phone that stopped answering ends the session: its message says what to do.
		target = repl.ErrGone
	case errors.Is(err, device.ErrUnsafeName), errors.Is(err, device.ErrNameNotAllowed):
		target = repl.ErrInvalidName
	default:
		return err
	}
	return repl.Classify(err, target)
}

// MapFSError wraps a file system error with the repl sentinel it means (ENOENT -> ErrNotFound,
// ENOSPC -> ErrNoSpace, EACCES -> ErrPermission, EROFS -> ErrReadOnly, ...), keeping its text.
func MapFSError(err error) error {
	var target error
	switch {
	case errors.Is(err, fs.ErrNotExist):
		target = repl.ErrNotFound
	case errors.Is(err, syscall.ENOTDIR):
		target = repl.ErrNotFound
	case errors.Is(err, fs.ErrExist):
		target = repl.ErrExists
	case errors.Is(err, syscall.ENOTEMPTY):
		target = repl.ErrNotEmpty
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EFBIG):
		target = repl.ErrNoSpace
	case errors.Is(err, syscall.EROFS):
		target = repl.ErrReadOnly
	case errors.Is(err, fs.ErrPermission):
		target = repl.ErrPermission
	case errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EILSEQ):
		target = repl.ErrInvalidName
	default:
		return err
	}
	return repl.Classify(err, target)
}
