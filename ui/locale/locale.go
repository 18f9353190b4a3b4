// Package locale keeps a C or POSIX locale (LANG=C.UTF-8, common in containers and scripts) from
// making fyne log a locale error on every start of the cradle command, window or not. Import it
// for its side effect before anything that imports fyne:
//
//	import _ "github.com/cradle-sync/cradle/ui/locale"
//
// Its init gives the process an English locale for messages while packages initialise (fyne's
// lang package reads it in its init), and Restore puts the environment back as it was, so that
// child processes (provider plugins) inherit the user's own. Go initialises packages in import
// path order among those whose dependencies are ready, and this package depends only on os, so
// it runs before fyne.io/fyne/v2/lang, which waits for github.com/jeandeaual/go-locale (any
// import path under github.com/cradle-sync sorts before that one, so this package may move).
//
// It lives beside the window (ui/) because it is a start-up fix for fyne, not part of the
// window: main.go imports it and calls Restore, and so do the window's tests. See docs/design.md.
package locale

import "os"

// saved is the LC_MESSAGES value the process started with, and whether it was set.
var (
	saved    string
	wasSet   bool
	replaced bool
)

func init() {
	loc := os.Getenv("LC_ALL")
	if loc == "" {
		loc = os.Getenv("LC_MESSAGES")
	}
	if loc == "" {
		loc = os.Getenv("LANG")
	}
	if !isPlain(loc) || os.Getenv("LC_ALL") != "" && !isPlain(os.Getenv("LC_ALL")) {
		return
	}
	if os.Getenv("LC_ALL") != "" {
		return // LC_ALL=C is an explicit choice; leave it alone
	}
	saved, wasSet = os.LookupEnv("LC_MESSAGES")
	os.Setenv("LC_MESSAGES", "en_US.UTF-8")
	replaced = true
}

// isPlain tells whether loc is the C or POSIX locale (or none).
func isPlain(loc string) bool {
	switch loc {
	case "", "C", "POSIX", "C.UTF-8", "C.utf8", "POSIX.UTF-8":
		return true
	}
	return false
}

// Restore puts LC_MESSAGES back as the process got it. main calls it first thing.
func Restore() {
	if !replaced {
		return
	}
	replaced = false
	if wasSet {
		os.Setenv("LC_MESSAGES", saved)
	} else {
		os.Unsetenv("LC_MESSAGES")
	}
}
