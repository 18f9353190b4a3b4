package mtp

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cradle-sync/cradle/device"
)

// ErrProtocol is wrapped by errors where the device broke the protocol: a response to another
// transaction, a data phase cut short, a container where none belongs.
var ErrProtocol = errors.New("MTP protocol error")

// ResponseError is a device's answer other than OK to an operation. Its message names both
// ("GetObjectInfo: device answered InvalidObjectHandle (0x2009)") and, for the answers a user can
// act on, what to do. It unwraps to the device package's sentinel errors: DeviceBusy to
// device.ErrBusy, StoreFull to device.ErrNoSpace, StoreReadOnly and ObjectWriteProtected to
// device.ErrReadOnly, InvalidObjectHandle to device.ErrNotFound, OperationNotSupported to
// device.ErrUnsupported, StoreNotAvailable to device.ErrLocked.
type ResponseError struct {
	Op     OpCode
	Code   ResponseCode
	Params []uint32
}

// Error names the operation and the answer, with advice for the answers a user can act on.
func (e *ResponseError) Error() string {
	s := fmt.Sprintf("%v: device answered %v (0x%04X)", e.Op, e.Code, uint16(e.Code))
	if h := responseHints[e.Code]; h != "" {
		s += ": " + h
	}
	return s
}

// Unwrap returns the device sentinel error the answer means, if any.
func (e *ResponseError) Unwrap() error { return responseSentinels[e.Code] }

var responseHints = map[ResponseCode]string{
	RespDeviceBusy: "the device is busy; another program may be using it (close it), or the " +
		"device is still preparing its storage: wait a moment and try again",
	RespStoreFull:            "the device storage is full; free space on it and try again",
	RespStoreReadOnly:        "the device storage is read-only",
	RespObjectWriteProtected: "the object is write-protected on the device",
	RespStoreNotAvailable: "the storage is not available; unlock the device and choose " +
		"\"File transfer\", or reinsert its memory card",
	RespAccessDenied: "the device refused access; unlock it and allow file transfer",
}

var responseSentinels = map[ResponseCode]error{
	RespDeviceBusy:            device.ErrBusy,
	RespStoreFull:             device.ErrNoSpace,
	RespStoreReadOnly:         device.ErrReadOnly,
	RespObjectWriteProtected:  device.ErrReadOnly,
	RespInvalidObjectHandle:   device.ErrNotFound,
	RespOperationNotSupported: device.ErrUnsupported,
	RespStoreNotAvailable:     device.ErrLocked,
}

// isResponse tells whether err is a ResponseError with one of the codes, or with any code when
// none is given.
func isResponse(err error, codes ...ResponseCode) bool {
	var re *ResponseError
	if !errors.As(err, &re) {
		return false
	}
	if len(codes) == 0 {
		return true
	}
	for _, c := range codes {
		if re.Code == c {
			return true
		}
	}
	return false
}

// notRefusals are the answers that say something about the object, the storage or the moment
// (it is gone, full, locked, busy, the transfer broke) rather than that the device will not do
// what was asked.
var notRefusals = []ResponseCode{
	RespDeviceBusy, RespInvalidObjectHandle, RespInvalidParentObject, RespInvalidStorageID,
	RespStoreFull, RespStoreNotAvailable, RespStoreReadOnly, RespObjectWriteProtected,
	RespSessionNotOpen, RespInvalidTransactionID, RespIncompleteTransfer, RespTransactionCancelled,
}

// isRefusal tells whether err is the device refusing an optional operation as such (setting a
// date, a property list, a rename): whatever code it chose (devices differ: InvalidObjectPropCode,
// ObjectPropNotSupported, AccessDenied, OperationNotSupported, GeneralError, ...), the caller
// falls back to what the operation stands for.
func isRefusal(err error) bool {
	var re *ResponseError
	return errors.As(err, &re) && !slices.Contains(notRefusals, re.Code)
}

// goneError is the error every call returns once the device is gone or closed.
type goneError struct {
	cause error
}

func (e *goneError) Error() string {
	if errors.Is(e.cause, errClosed) || errors.Is(e.cause, errUnplugged) {
		return fmt.Sprintf("%v: %v", device.ErrDisconnected, e.cause)
	}
	return fmt.Sprintf("%v: %v; unplug it and plug it in again", device.ErrDisconnected, e.cause)
}

func (e *goneError) Unwrap() []error { return []error{device.ErrDisconnected, e.cause} }

// errClosed is the cause after Close.
var errClosed = errors.New("the connection was closed")

// errUnplugged is the cause after Unplugged.
var errUnplugged = errors.New("it left the USB bus")
