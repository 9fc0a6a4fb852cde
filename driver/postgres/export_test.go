package postgres

// SetFreeSpace makes scratch preflight read free space through fn, for the
// tests of the not-enough-space path (no real file system is small enough).
func SetFreeSpace(d *Driver, fn func(dir string) (int64, error)) { d.freeSpace = fn }
