package main

import (
	"fmt"

	"github.com/cradle-sync/cradle/manager"
)

// startDemo is --demo: a temporary config folder, an emulated device with sample content, ready
// partnerships and one conflict waiting.
func startDemo(c *cli) (*manager.Manager, func(), error) {
	return nil, nil, fmt.Errorf("the demo is not available in this build yet")
}
