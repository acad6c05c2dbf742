//go:build !linux

package admin

import "net"

// checkPeer relies on the socket file's mode 0600 where peer credentials
// are not available.
func checkPeer(c net.Conn) error { return nil }
