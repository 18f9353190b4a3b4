package manager

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cradle-sync/cradle/providers/plugin"
)

// loadPlugins discovers the provider plugins in Dir/plugins and registers their providers. A
// plugin that cannot be loaded is reported (an Error event and the log) and skipped.
func (m *Manager) loadPlugins(ctx context.Context) {
	host := plugin.NewHost(plugin.Config{Logger: m.log, LogDir: LogDir(m.dir)})
	names, errs := host.Discover(ctx, m.dir)
	if len(names) > 0 {
		m.log.Info("manager: provider plugins loaded", "providers", names)
	}
	for _, err := range errs {
		m.pluginErrs = append(m.pluginErrs, fmt.Sprintf("A provider plugin could not be loaded: %v", err))
	}
}

// LogDir is the folder of the config folder dir where provider plugins' log files are kept
// (plugin.LogFile): everything a plugin writes, a crash's traceback included.
func LogDir(dir string) string { return filepath.Join(dir, "logs") }

// isProviderStop tells whether err is a provider plugin that stopped (the next session restarts
// it), as opposed to a device that went away.
func isProviderStop(err error) bool {
	var se *plugin.StoppedError
	return err != nil && errors.As(err, &se)
}
