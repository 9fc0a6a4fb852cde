// Command themisctl runs and drives Themis Maintenance: the worker, the API
// server, a one-process dev mode, and client commands over the API.
package main

import (
	"os"

	"github.com/themis-maintenance/themis/cmd/themisctl/root"
)

func main() {
	os.Exit(root.Main())
}
