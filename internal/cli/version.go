package cli

import (
	"runtime/debug"
)

// Version is the program's version, from FyneApp.toml (main sets it); Commit is the commit it
// was built from when the build did not stamp one (-ldflags "-X main.commit=...").
var (
	Version = "dev"
	Commit  = ""
)

// versionLine is what `cradle --version` prints: "cradle 0.1.0 (commit 5f4b0f5a1c2d)", with
// ", modified" when the tree had changes the commit lacks.
func versionLine() string {
	commit, modified := Commit, false
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if commit == "" {
					commit = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	line := "cradle " + Version
	if commit == "" {
		return line + " (commit unknown)"
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	line += " (commit " + commit
	if modified {
		line += ", modified"
	}
	return line + ")"
}
