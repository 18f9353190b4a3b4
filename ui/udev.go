package ui

import (
	"strings"

	"github.com/cradle-sync/cradle/assets"
)

// udevRulePath is where the rule goes.
const udevRulePath = "/etc/udev/rules.d/69-cradle-mtp.rules"

// udevCommands are the shell commands that install Cradle's udev rule (assets.UdevRule) and make
// udev apply it, for the user to paste in a terminal. Comment lines of the rule are left out to
// keep them short.
func udevCommands() string {
	var rule []string
	for _, line := range strings.Split(assets.UdevRule, "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		rule = append(rule, line)
	}
	return "sudo tee " + udevRulePath + " >/dev/null <<'EOF'\n" +
		strings.Join(rule, "\n") + "\nEOF\n" +
		"sudo udevadm control --reload-rules && sudo udevadm trigger"
}
