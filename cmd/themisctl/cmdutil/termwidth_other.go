//go:build !unix

package cmdutil

import "os"

// ttyColumns returns 0: the width is taken from $COLUMNS, if set.
func ttyColumns(*os.File) int { return 0 }
