// Package version says which yubin this is: "yubin version", the status
// of a running server and the metrics' yubin_build_info.
package version

import "runtime/debug"

// Version is the release, set when building with
// -ldflags "-X yubin/internal/version.Version=v1.2.3"; "dev" otherwise.
var Version = "dev"

// String is Version, followed by the commit it was built from when the
// Go toolchain recorded one ("dev+3f2c1a9b0d4e", "+dirty" for a tree with
// changes), in one word.
func String() string {
	v := Version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += "+" + rev + dirty
	}
	return v
}
