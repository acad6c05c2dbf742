// Package sdnotify tells systemd about the service's state (sd_notify(3)):
// READY=1 once every listener is up, RELOADING=1 and READY=1 around a
// reload, STOPPING=1 at shutdown. It writes one datagram to the unix socket
// named by $NOTIFY_SOCKET, which systemd sets for Type=notify services;
// without it nothing is sent.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Env is the variable systemd names its notification socket in.
const Env = "NOTIFY_SOCKET"

// Ready, Stopping and Reloading are the states a server sends.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// Reloading is RELOADING=1 with the CLOCK_MONOTONIC time systemd asks for
// with it (systemd 253 and later check it for Type=notify-reload).
func Reloading() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1"
	}
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000)
}

// Status is a STATUS= line (what "systemctl status" shows), on one line.
func Status(s string) string {
	return "STATUS=" + strings.Join(strings.Fields(s), " ")
}

// Notify sends the state lines (joined with newlines) to $NOTIFY_SOCKET.
// sent is false, and err nil, when the variable is not set (not run by
// systemd). An address starting with "@" is in the abstract namespace.
func Notify(state ...string) (sent bool, err error) {
	name := os.Getenv(Env)
	if name == "" {
		return false, nil
	}
	if !strings.HasPrefix(name, "/") && !strings.HasPrefix(name, "@") {
		return false, fmt.Errorf("sd_notify: unsupported %s=%q (only unix sockets)", Env, name)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(strings.Join(state, "\n"))); err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	return true, nil
}
