package smtpd

import (
	"github.com/emersion/go-smtp"

	"yubin/internal/notify"
	"yubin/internal/sendlimit"
	"yubin/store"
)

var errRateLimited = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Sending rate limit reached; try again later"}

// mayStart is the MAIL check of submission: an account that reached its
// hourly limit starts no message.
func (s *session) mayStart(acct store.Account) error {
	if r := s.srv.cfg.SendLimit.Message(acct.Address); !r.OK {
		return s.rateLimited(acct, r)
	}
	return nil
}

// countRecipient is the RCPT check of submission: it counts the recipient
// (and, for the transaction's first, the message) against the account's
// hourly limits, or refuses it.
func (s *session) countRecipient() error {
	s.mu.Lock()
	acct, first := s.acct, len(s.rcpts) == 0
	s.mu.Unlock()
	if acct == nil {
		return nil // port 25: an SRS bounce going back
	}
	if r := s.srv.cfg.SendLimit.Recipient(acct.Address, first); !r.OK {
		return s.rateLimited(*acct, r)
	}
	return nil
}

// rateLimited answers 451 4.7.0 and, once an hour per account, warns the
// domain's admins.
func (s *session) rateLimited(acct store.Account, r sendlimit.Result) error {
	lim := s.srv.cfg.SendLimit.Limits()
	s.logger().Warn("smtp submission refused: sending limit reached", "user", acct.Address,
		"messages", r.Messages, "recipients", r.Recipients, "max_messages", lim.Messages, "max_recipients", lim.Recipients)
	if r.Warn && s.srv.cfg.Notifier != nil {
		rate := notify.Rate{Messages: r.Messages, Recipients: r.Recipients, MaxMessages: lim.Messages, MaxRecipients: lim.Recipients}
		if _, err := s.srv.cfg.Notifier.WarnRateLimited(s.srv.ctx, acct.Address, rate); err != nil {
			s.logger().Error("sending limit warning", "user", acct.Address, "err", err)
		}
	}
	return errRateLimited
}
