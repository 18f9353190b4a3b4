package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers/plugin/internal/pb"
	"github.com/cradle-sync/cradle/repl"
)

// StoppedError is the error of every call to a plugin store whose process exited or crashed. It
// wraps repl.ErrGone: the engine stops using the store, and the store starts a new process at the
// next sync.
type StoppedError struct {
	// Provider is the provider's name.
	Provider string
	// Status is how the process ended ("exit status 2", "signal: killed"), or what was lost when
	// the process could not be observed ("connection lost").
	Status string
	// LastLog is the last meaningful line the plugin logged (the panic message of a crash), or
	// empty.
	LastLog string
	// Log is the plugin's log file (with the whole traceback of a crash), or empty.
	Log string
	// Closed is true when the partnership closed the store; it is then not restarted.
	Closed bool
}

func (e *StoppedError) Error() string {
	if e.Closed {
		return fmt.Sprintf("provider %s is closed", e.Provider)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "provider %s stopped: %s", e.Provider, e.Status)
	if e.LastLog != "" {
		fmt.Fprintf(&b, " (last log: %s)", e.LastLog)
	}
	if e.Log != "" {
		fmt.Fprintf(&b, "; its log is %s", e.Log)
	}
	return b.String()
}

// Unwrap returns repl.ErrGone.
func (e *StoppedError) Unwrap() error { return repl.ErrGone }

// sentinels maps each sentinel error to its wire name and its gRPC code, in the order in which a
// code is chosen when an error wraps several (the context errors first: they explain the rest).
var sentinels = []struct {
	err  error
	wire pb.Sentinel
	code codes.Code
}{
	{context.Canceled, pb.Sentinel_SENTINEL_CANCELED, codes.Canceled},
	{context.DeadlineExceeded, pb.Sentinel_SENTINEL_DEADLINE_EXCEEDED, codes.DeadlineExceeded},
	{repl.ErrNotFound, pb.Sentinel_SENTINEL_NOT_FOUND, codes.NotFound},
	{repl.ErrChanged, pb.Sentinel_SENTINEL_CHANGED, codes.Aborted},
	{repl.ErrExists, pb.Sentinel_SENTINEL_EXISTS, codes.AlreadyExists},
	{repl.ErrNotEmpty, pb.Sentinel_SENTINEL_NOT_EMPTY, codes.FailedPrecondition},
	{repl.ErrNoSpace, pb.Sentinel_SENTINEL_NO_SPACE, codes.ResourceExhausted},
	{repl.ErrGone, pb.Sentinel_SENTINEL_GONE, codes.Unavailable},
	{repl.ErrReadOnly, pb.Sentinel_SENTINEL_READ_ONLY, codes.PermissionDenied},
	{repl.ErrInvalidName, pb.Sentinel_SENTINEL_INVALID_NAME, codes.InvalidArgument},
	{repl.ErrPermission, pb.Sentinel_SENTINEL_PERMISSION, codes.PermissionDenied},
	// The device errors: what the host's device answers a plugin's device side, and what that
	// side's errors wrap on their way back.
	{device.ErrNotFound, pb.Sentinel_SENTINEL_DEVICE_NOT_FOUND, codes.NotFound},
	{device.ErrExists, pb.Sentinel_SENTINEL_DEVICE_EXISTS, codes.AlreadyExists},
	{device.ErrNotEmpty, pb.Sentinel_SENTINEL_DEVICE_NOT_EMPTY, codes.FailedPrecondition},
	{device.ErrUnsupported, pb.Sentinel_SENTINEL_DEVICE_UNSUPPORTED, codes.Unimplemented},
	{device.ErrDisconnected, pb.Sentinel_SENTINEL_DEVICE_DISCONNECTED, codes.Unavailable},
	{device.ErrNoSpace, pb.Sentinel_SENTINEL_DEVICE_NO_SPACE, codes.ResourceExhausted},
	{device.ErrReadOnly, pb.Sentinel_SENTINEL_DEVICE_READ_ONLY, codes.PermissionDenied},
	{device.ErrBusy, pb.Sentinel_SENTINEL_DEVICE_BUSY, codes.Unavailable},
	{device.ErrPermission, pb.Sentinel_SENTINEL_DEVICE_PERMISSION, codes.PermissionDenied},
	{device.ErrLocked, pb.Sentinel_SENTINEL_DEVICE_LOCKED, codes.FailedPrecondition},
	{device.ErrUnsafeName, pb.Sentinel_SENTINEL_DEVICE_UNSAFE_NAME, codes.InvalidArgument},
}

// codeSentinels is what a bare status code means when a plugin sent no StoreError detail (a
// plugin written in another language that only sets codes).
var codeSentinels = map[codes.Code]error{
	codes.Canceled:          context.Canceled,
	codes.DeadlineExceeded:  context.DeadlineExceeded,
	codes.NotFound:          repl.ErrNotFound,
	codes.Aborted:           repl.ErrChanged,
	codes.AlreadyExists:     repl.ErrExists,
	codes.ResourceExhausted: repl.ErrNoSpace,
	codes.Unavailable:       repl.ErrGone,
	codes.PermissionDenied:  repl.ErrPermission,
}

// validText makes s safe for a protobuf string (which must be UTF-8): an error message may quote a
// file name that is not.
func validText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// storeErrorToPB describes err for the wire.
func storeErrorToPB(err error) (*pb.StoreError, codes.Code) {
	se := &pb.StoreError{Message: validText(err.Error())}
	code := codes.Unknown
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			se.Sentinels = append(se.Sentinels, s.wire)
			if code == codes.Unknown {
				code = s.code
			}
		}
	}
	return se, code
}

// toStatus is the plugin side of the mapping: a store's error becomes a gRPC status with a code
// and a StoreError detail. Errors that already are statuses (the server's own protocol errors)
// pass unchanged.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	se, code := storeErrorToPB(err)
	st, derr := status.New(code, se.Message).WithDetails(se)
	if derr != nil {
		// Only a marshalling failure gets here; the code alone still carries the sentinel.
		return status.Error(code, se.Message)
	}
	return st.Err()
}

// remoteError is an error that came from the plugin: its message as the plugin wrote it, and the
// sentinels it wrapped there, so that errors.Is works on the host.
type remoteError struct {
	msg   string
	wraps []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.wraps }

// storeErrorFromPB rebuilds an error from its wire description; fallback is the sentinel the
// status code implies when the description names none.
func storeErrorFromPB(se *pb.StoreError, fallback error) error {
	msg := se.GetMessage()
	if msg == "" {
		msg = "unknown error"
	}
	e := &remoteError{msg: msg}
	for _, w := range se.GetSentinels() {
		for _, s := range sentinels {
			if s.wire == w {
				e.wraps = append(e.wraps, s.err)
			}
		}
	}
	if len(e.wraps) == 0 && fallback != nil {
		e.wraps = append(e.wraps, fallback)
	}
	return e
}

// fromStatus is the host side of the mapping: it returns the plugin's error with its sentinels,
// and whether the status looks like the transport failing (the process gone) rather than an
// answer of the plugin.
func fromStatus(err error) (out error, transport bool) {
	st, ok := status.FromError(err)
	if !ok {
		return err, false
	}
	for _, d := range st.Details() {
		if se, ok := d.(*pb.StoreError); ok {
			return storeErrorFromPB(se, codeSentinels[st.Code()]), false
		}
	}
	switch st.Code() {
	case codes.Unavailable, codes.Internal:
		// No detail: our server always attaches one, so this is gRPC itself failing (connection
		// refused or closed, a stream cut mid-message).
		return storeErrorFromPB(&pb.StoreError{Message: st.Message()}, repl.ErrGone), true
	case codes.Canceled:
		return storeErrorFromPB(&pb.StoreError{Message: st.Message()}, context.Canceled), true
	}
	return storeErrorFromPB(&pb.StoreError{Message: st.Message()}, codeSentinels[st.Code()]), false
}
