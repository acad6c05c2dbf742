// Package dist holds what is installed next to the binary: the systemd
// unit (systemd/yubin.service), which "yubin service install" writes.
package dist

import _ "embed"

// SystemdUnit is systemd/yubin.service.
//
//go:embed systemd/yubin.service
var SystemdUnit string

// Where the unit expects things, and "yubin service install" puts them.
const (
	User       = "yubin"
	BinPath    = "/usr/local/bin/yubin"
	ConfigDir  = "/etc/yubin"
	ConfigPath = "/etc/yubin/yubin.toml"
	DataDir    = "/var/lib/yubin"
	UnitPath   = "/etc/systemd/system/yubin.service"
)
