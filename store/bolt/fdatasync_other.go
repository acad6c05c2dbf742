//go:build !linux

package bolt

import "os"

// fdatasync is fsync where Go offers no fdatasync.
func fdatasync(f *os.File) error { return f.Sync() }
