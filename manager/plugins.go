package manager

import "context"

// loadPlugins discovers provider plugins in Dir/plugins and registers them.
func (m *Manager) loadPlugins(ctx context.Context) {}

// isProviderStop tells whether err is a provider plugin that stopped (the next session restarts
// it), as opposed to a device that went away.
func isProviderStop(err error) bool { return false }
