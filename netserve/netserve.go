// Package netserve is the accept loop the protocol servers (pop3d, imapd)
// share: temporary accept errors are retried with a growing pause, and a
// listener closed by Shutdown ends the loop without an error.
package netserve

import (
	"errors"
	"net"
	"time"
)

// Accept calls handle, on the accepting goroutine, for every connection ln
// accepts, until Accept fails for good. If closing reports true by then
// (the server is shutting down), Accept returns nil; else the error.
// handle must not block: it starts the connection's own goroutine.
func Accept(ln net.Listener, closing func() bool, handle func(net.Conn)) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if closing() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		handle(c)
	}
}
