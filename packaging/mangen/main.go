// Command mangen writes Cradle's manual page, cradle(1), from the command table
// (internal/cli): go run ./packaging/mangen > cradle.1. The date is SOURCE_DATE_EPOCH's when
// set, so a package build is reproducible.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/cradle-sync/cradle/internal/cli"
	"github.com/cradle-sync/cradle/ui/locale"
)

func main() {
	locale.Restore()
	var meta struct{ Details struct{ Version string } }
	if _, err := toml.DecodeFile("FyneApp.toml", &meta); err == nil && meta.Details.Version != "" {
		cli.Version = meta.Details.Version
	}
	date := time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			date = time.Unix(n, 0)
		}
	}
	if err := cli.WriteManPage(os.Stdout, date); err != nil {
		fmt.Fprintln(os.Stderr, "mangen:", err)
		os.Exit(1)
	}
}
