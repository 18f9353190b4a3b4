package emulator

// The faults and moods of the emulated device, which tests and demos set at run time: a
// disconnection, a stall, a busy or slow answer, a wedge, a lock, a card taken out.

import (
	"context"
	"time"

	"github.com/cradle-sync/cradle/device/mtp"
)

// DisconnectAfter makes the device disappear once bulk in has delivered in more bytes or bulk out
// has taken out more bytes, counted from now; a negative count leaves that direction alone.
func (e *Emulator) DisconnectAfter(in, out int64) {
	e.faultMu.Lock()
	e.inBudget, e.outBudget = in, out
	e.faultMu.Unlock()
}

// Stall makes the device swallow the next command with operation op (0: any) and never answer
// it, until the initiator cancels the transaction (Reset) or gives up.
func (e *Emulator) Stall(op mtp.OpCode) {
	e.faultMu.Lock()
	e.stallOp, e.stallArmed = op, true
	e.faultMu.Unlock()
}

// Slow makes the device take d before it answers the next command with operation op, as a phone
// that is busy with its storage does.
func (e *Emulator) Slow(op mtp.OpCode, d time.Duration) {
	e.faultMu.Lock()
	e.slowOp, e.slowFor = op, d
	e.faultMu.Unlock()
}

func (e *Emulator) takeSlow(op mtp.OpCode) time.Duration {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	if e.slowFor > 0 && e.slowOp == op {
		d := e.slowFor
		e.slowFor = 0
		return d
	}
	return 0
}

// Busy makes the device answer DeviceBusy to the next n commands with operation op (0: any);
// n < 0 keeps answering it until Busy is called again with n = 0.
func (e *Emulator) Busy(op mtp.OpCode, n int) {
	e.faultMu.Lock()
	e.busyOp, e.busyLeft = op, n
	e.faultMu.Unlock()
}

// KeepPartial makes an upload that does not complete stay on the device under its name, as a
// phone that created the file at SendObjectInfo does; the initiator must delete it.
func (e *Emulator) KeepPartial(on bool) {
	e.faultMu.Lock()
	e.keepPartial = on
	e.faultMu.Unlock()
}

// StaleResponse makes the device send, before its next response, a response to an older
// transaction, as a device that answered a cancelled transaction late does.
func (e *Emulator) StaleResponse() {
	e.faultMu.Lock()
	e.staleResp = true
	e.faultMu.Unlock()
}

// Renumber gives every object a new handle now, in the middle of the session, as some devices
// do after a media rescan: handles the initiator holds become invalid.
func (e *Emulator) Renumber() {
	e.mu.Lock()
	e.tab.renumber()
	e.mu.Unlock()
}

// EjectSDCard takes the SD card (Options.SDCard) out: its storage and objects disappear and the
// device sends StoreRemoved.
func (e *Emulator) EjectSDCard() { e.setCard(true) }

// InsertSDCard puts the SD card back: the device sends StoreAdded.
func (e *Emulator) InsertSDCard() { e.setCard(false) }

func (e *Emulator) setCard(ejected bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.storages) < 2 || e.storages[1].ejected == ejected {
		return
	}
	st := e.storages[1]
	st.ejected = ejected
	if ejected {
		for _, c := range st.root.children {
			e.tab.remove(c)
		}
		if st.root.watched {
			st.root.watched = false
			e.watch.remove(st.root)
		}
		st.root.children = nil
		e.event(mtp.EventStoreRemoved, st.id)
	} else {
		e.event(mtp.EventStoreAdded, st.id)
	}
}

// RefuseZLPOnce makes the device stall the next zero-length packet the initiator sends, once,
// as a transient failure of a phone that otherwise needs them.
func (e *Emulator) RefuseZLPOnce() {
	e.faultMu.Lock()
	e.refuseZLP = true
	e.faultMu.Unlock()
}

var _ mtp.DeviceResetter = (*Emulator)(nil)

// Unlock unlocks a device started with Options.Locked: its storages appear, each announced with
// StoreAdded.
func (e *Emulator) Unlock() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.locked {
		return
	}
	e.locked = false
	for _, st := range e.tab.present() {
		e.event(mtp.EventStoreAdded, st.id)
	}
}

// Lock locks the device: its storages disappear, each announced with StoreRemoved.
func (e *Emulator) Lock() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.locked {
		return
	}
	for _, st := range e.tab.present() {
		e.event(mtp.EventStoreRemoved, st.id)
	}
	e.locked = true
}

// ResetDevice is a USB port reset: the device drops its session and whatever was in flight, and
// answers again if it was wedged (Options.CancelWedge). Handles survive with KeepHandles.
func (e *Emulator) ResetDevice(ctx context.Context) error {
	if e.isGone() {
		return mtp.ErrTransportClosed
	}
	e.faultMu.Lock()
	e.wedged, e.halted, e.stallArmed = false, false, false
	e.faultMu.Unlock()
	if err := e.Reset(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	if !e.opts.KeepHandles {
		e.tab.clear()
	}
	e.tab.session, e.tab.lastTID, e.tab.stale = 0, 0, false
	e.mu.Unlock()
	e.intr.clear()
	return nil
}

func (e *Emulator) isWedged() bool {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	return e.wedged
}

func (e *Emulator) wedge() {
	e.faultMu.Lock()
	e.wedged = true
	e.faultMu.Unlock()
}

// zone is the device's own time zone.
func (e *Emulator) zone() *time.Location {
	if e.opts.Zone != nil {
		return e.opts.Zone
	}
	return time.Local
}

// takeFault checks the stall and busy faults for a command.
func (e *Emulator) takeFault(op mtp.OpCode) (stall, busy bool) {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	if e.stallArmed && (e.stallOp == 0 || e.stallOp == op) {
		e.stallArmed = false
		return true, false
	}
	if e.busyLeft != 0 && (e.busyOp == 0 || e.busyOp == op) {
		if e.busyLeft > 0 {
			e.busyLeft--
		}
		return false, true
	}
	return false, false
}

func (e *Emulator) keepingPartial() bool {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	return e.keepPartial
}

func (e *Emulator) takeStale() bool {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	s := e.staleResp
	e.staleResp = false
	return s
}
