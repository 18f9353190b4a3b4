package repl

// Why a write or a delete happens, as the stores are told (WriteRequest.Cause, CauseDeleter): a
// session remembers, per item, the conflicts the user resolved and the policy's decisions, so a
// later pass that writes the kept version over the other side's says so.

// causeOf is why a write over item gid's version happens, def when nothing said otherwise.
func (s *session) causeOf(gid Version, def Cause) Cause {
	if c, ok := s.causes[gid]; ok && def != CauseDelete {
		return c
	}
	return def
}

// setCause records why a later write of item gid over the other side's version happens; a
// conflict the user resolved stays one.
func (s *session) setCause(gid Version, c Cause) {
	if s.causes == nil {
		s.causes = map[Version]Cause{}
	}
	if s.causes[gid] != CauseConflict {
		s.causes[gid] = c
	}
}
