package imapd

import (
	"strings"
	"time"

	"yubin/store"
)

// IDLE (RFC 2177).
func init() {
	register("IDLE", commandSpec{run: (*conn).cmdIdle, states: authState, updates: true})
}

// cmdIdle writes the selected mailbox's changes as they are committed
// until the client says DONE (or the idle timeout, or Shutdown).
func (c *conn) cmdIdle(cmd *command) error {
	if err := c.r.End(); err != nil {
		return err
	}
	if c.sel != nil {
		if err := c.syncSelected(true); err != nil {
			return err
		}
		if err := c.searchUpdates(); err != nil {
			return err
		}
	}
	c.w.Raw("+ idling").CRLF()
	if err := c.w.Flush(); err != nil {
		return err
	}
	// The client's DONE is read on another goroutine while this one
	// writes updates; nothing else reads or writes meanwhile.
	type line struct {
		text string
		err  error
	}
	done := make(chan line, 1)
	c.tc.SetReadDeadline(time.Now().Add(c.srv.cfg.IdleTimeout))
	c.waiting.Store(true)
	go func() {
		err := c.r.Begin()
		text := ""
		if err == nil {
			text = c.r.Rest()
		}
		done <- line{text, err}
	}()
	if c.stopping.Load() {
		c.tc.SetReadDeadline(time.Now())
	}
	var events <-chan store.Event
	if c.sel != nil && c.idleSelected() {
		events = c.sel.sub.C
	}
	// NOTIFY's notifications about other mailboxes (notify.go).
	feed, wake := c.notifyChans()
	for {
		select {
		case l := <-done:
			c.waiting.Store(false)
			if l.err != nil {
				if c.stopping.Load() && c.r.Err() != nil {
					c.bye("Server shutting down")
					return errHungUp
				}
				if c.r.Err() != nil {
					c.bye("Autologout; idle for too long")
					return errHungUp
				}
				return bad("Line too long")
			}
			if !strings.EqualFold(l.text, "DONE") {
				return bad("Expected DONE")
			}
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			v := c.sel
			if ev.Mailbox == v.name && ev.UIDValidity == v.uidValidity {
				v.pending = append(v.pending, ev)
			}
			if err := c.syncSelected(true); err != nil {
				return err
			}
			if err := c.searchUpdates(); err != nil {
				return err
			}
			if err := c.w.Flush(); err != nil {
				return err
			}
		case ev, ok := <-feed:
			if !ok {
				feed = nil
			}
			if err := c.notifyEvent(ev, ok); err != nil {
				return err
			}
			if err := c.w.Flush(); err != nil {
				return err
			}
		case <-wake:
			if err := c.notifyFlush(); err != nil {
				return err
			}
			if err := c.searchUpdates(); err != nil {
				return err
			}
			if err := c.w.Flush(); err != nil {
				return err
			}
		}
	}
}
