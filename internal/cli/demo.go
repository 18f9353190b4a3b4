package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/cradle-sync/cradle/manager"
	"github.com/cradle-sync/cradle/manager/demo"
)

// startDemo is --demo: a temporary config folder, an emulated phone with sample content, ready
// partnerships and one conflict waiting. cleanup closes the manager and removes the folder.
func startDemo(c *invocation) (*manager.Manager, func(), error) {
	root, err := os.MkdirTemp("", "cradle-demo-")
	if err != nil {
		return nil, nil, fmt.Errorf("demo: %w", err)
	}
	remove := func() { os.RemoveAll(root) }
	d, err := demo.Setup(c.ctx, root)
	if err != nil {
		remove()
		return nil, nil, err
	}
	cfg := d.Config()
	cfg.Logger = c.logger(slog.LevelWarn)
	m, err := manager.New(c.ctx, cfg)
	if err != nil {
		remove()
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(c.ctx, deviceWait)
	defer cancel()
	if err := m.WaitDevices(ctx, d.DeviceKey()); err != nil {
		m.Close()
		remove()
		return nil, nil, fmt.Errorf("demo: %w", err)
	}
	c.say("Cradle demo: the emulated phone's storage is %s, the computer's folders are in %s (removed when the window closes).", d.DeviceDir, d.DesktopDir)
	return m, func() {
		m.Close() // stops the emulated phone before its folder goes
		remove()
	}, nil
}
