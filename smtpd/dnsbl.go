package smtpd

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/emersion/go-smtp"

	"yubin/internal/dnsbl"
)

// clientCheck is the DNSBL lookup of a port-25 client's IP address. It
// starts with the connection's first session and runs in the background:
// RCPT waits for it only when a zone is marked reject, DATA to put the
// listings on the delivery envelope.
type clientCheck struct {
	done chan struct{}
	hits []dnsbl.Hit
}

// clientCheckOnce makes one clientCheck per connection, shared by the
// sessions go-smtp makes on EHLO and after STARTTLS.
type clientCheckOnce struct {
	once  sync.Once
	check *clientCheck
}

// clientCheck returns the connection's lookup, starting it on first use;
// nil when no DNSBL zone is configured or the listener is not port 25.
func (s *session) clientCheck() *clientCheck {
	if s.mode != MX || !s.srv.cfg.DNSBL.HasDNSBL() {
		return nil
	}
	if s.tracked == nil {
		return s.srv.checkClient(s.remote)
	}
	o := &s.tracked.dnsbl
	o.once.Do(func() { o.check = s.srv.checkClient(s.remote) })
	return o.check
}

// checkClient starts the lookup of remote's IP address.
func (s *Server) checkClient(remote net.Addr) *clientCheck {
	c := &clientCheck{done: make(chan struct{})}
	ip, err := netip.ParseAddr(ipOf(remote))
	if err != nil {
		close(c.done)
		return c
	}
	go func() {
		defer close(c.done)
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("panic in DNSBL lookup", "panic", r)
			}
		}()
		c.hits = s.cfg.DNSBL.CheckIP(s.ctx, ip)
		if len(c.hits) > 0 {
			s.log.Info("smtp client listed", "remote", remote.String(), "dnsbl", c.hits)
		}
	}()
	return c
}

// wait returns the listings once the lookup is done (it has its own
// timeout), or none if ctx ends first.
func (c *clientCheck) wait(ctx context.Context) []dnsbl.Hit {
	if c == nil {
		return nil
	}
	select {
	case <-c.done:
		return c.hits
	case <-ctx.Done():
		return nil
	}
}

// refuseListed is the RCPT check: a client listed on a zone marked reject
// gets "554 5.7.1 Service unavailable; client host [IP] blocked using
// ZONE", as Postfix's reject_rbl_client and postscreen answer, with the
// zone's TXT record when it has one. Nothing else refuses: other listings
// are spam signals, and a list that fails or times out is no listing.
func (s *session) refuseListed(rcpt string) error {
	if !s.srv.cfg.DNSBL.Rejects() {
		return nil
	}
	for _, h := range s.check.wait(s.srv.ctx) {
		if !h.Reject {
			continue
		}
		msg := fmt.Sprintf("Service unavailable; client host [%s] blocked using %s", ipOf(s.remote), h.Zone)
		if h.Reason != "" {
			msg += "; " + h.Reason
		}
		s.logger().Info("smtp recipient refused: client listed", "rcpt", clip(rcpt), "zone", h.Zone, "answers", strings.Join(h.Answers, ","))
		return s.hardError(&smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: msg})
	}
	return nil
}
