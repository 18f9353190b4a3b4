package contacts

import (
	"log"
	"os"
)

// logger is the package's own logger, used when a store is given none.
var logger = log.New(os.Stderr, "contacts: ", log.LstdFlags)

func defaultLogger(format string, args ...any) { logger.Printf(format, args...) }
