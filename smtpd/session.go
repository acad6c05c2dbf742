package smtpd

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"yubin/internal/address"
	"yubin/internal/auth"
	"yubin/internal/delivery"
	"yubin/internal/mailheader"
	"yubin/internal/spool"
	"yubin/store"
)

// maxHelo is the longest HELO/EHLO name taken: a domain name or an
// address literal, at most 255 octets (RFC 5321 section 4.5.3.1.2).
const maxHelo = 255

// pathTooLong is the reply text for a MAIL FROM or RCPT TO address over
// the limits of address.Parse ("501 Path too long" is RFC 5321 section
// 4.5.3.1.10's own example).
var pathTooLong = fmt.Sprintf("Path too long (at most %d octets before the @, %d after it)", address.MaxLocalPart, address.MaxDomain)

// Replies, with their enhanced status codes (RFC 3463).
var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errAuthFailed   = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
	errAuthLocked   = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many failed logins from your address; try again later"}
	errAuthTemp     = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}
	errAuthOnMX     = &smtp.SMTPError{Code: 502, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Authentication is not available on this port; use submission (587 or 465)"}
	errAuthMech     = &smtp.SMTPError{Code: 504, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Unsupported authentication mechanism; use PLAIN or LOGIN"}
	errNoSuchUser   = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	errRelayDenied  = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying denied: this server only accepts mail for its own domains"}
	errNoOutbound   = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Mail to remote domains cannot be sent: outbound delivery is not enabled on this server yet"}
	errSenderNotOwn = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Sender address is not one of your addresses"}
	errBadSender    = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Bad sender address syntax"}
	errSenderLong   = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: pathTooLong}
	errRcptLong     = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: pathTooLong}
	errHeloLong     = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: fmt.Sprintf("HELO/EHLO name too long (at most %d octets)", maxHelo)}
	errMailboxFull  = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}
	errTempLocal    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary local problem, please try again later"}
	errTooManyErrs  = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many errors, closing connection"}
	errNoStorage    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Insufficient system storage: too much mail in transit, please try again later"}
	errSizeNoRoom   = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Insufficient system storage for a message of that size now, please try again later"}
)

type backend struct {
	srv  *Server
	mode Mode
}

// NewSession is called by go-smtp on every HELO/EHLO after connect and
// after STARTTLS, on the connection's goroutine.
func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	if len(c.Hostname()) > maxHelo {
		// It would go into the log and the Received field. go-smtp answers
		// with the error and the client may try again.
		return nil, errHeloLong
	}
	nc := c.Conn()
	_, isTLS := c.TLSConnectionState()
	s := &session{
		srv:    b.srv,
		mode:   b.mode,
		conn:   c,
		remote: nc.RemoteAddr(),
		helo:   c.Hostname(),
		tls:    isTLS,
	}
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	s.tracked, _ = nc.(*trackedConn)
	s.check = s.clientCheck()
	return s, nil
}

type rcpt struct {
	given    string   // as the client wrote it (after go-smtp's parsing)
	accounts []string // the accounts that receive its mail (recipientAccounts)
	remote   string   // or: a remote address, for the outbound queue
}

// session is one SMTP session (between EHLOs). go-smtp calls it from the
// connection goroutine, except Data during BDAT, which runs on its own
// goroutine while Reset/Logout may still come in: mu guards the state.
type session struct {
	srv     *Server
	mode    Mode
	conn    *smtp.Conn
	tracked *trackedConn
	remote  net.Addr
	helo    string
	tls     bool
	check   *clientCheck // port 25: the client's DNSBL lookup

	mu       sync.Mutex
	acct     *store.Account // authenticated account (submission)
	from     string
	fromSet  bool
	size     int64 // SIZE= from MAIL, 0 if none
	rcpts    []rcpt
	hardErrs int

	// For Metrics: a transaction is open from an accepted MAIL until its
	// data, or until it is given up (RSET, EHLO, QUIT, the connection
	// closed); refused is the code of its last refused RCPT.
	txOpen  bool
	refused int
}

func (s *session) logger() *slog.Logger {
	return s.srv.log.With("listener", s.mode.String(), "remote", s.remote.String())
}

func (s *session) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endTransaction()
	s.from, s.fromSet, s.size, s.rcpts = "", false, 0, nil
	if s.tracked != nil {
		s.tracked.busy.Store(false) // the transaction is over (or aborted)
	}
}

func (s *session) Logout() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endTransaction()
	return nil
}

// endTransaction counts a transaction given up before its data, if it had
// a recipient refused, by the last refusal (a client that gives up after
// 550 to every RCPT, say). One given up without a refusal is not counted:
// no reply ended it. s.mu is held.
func (s *session) endTransaction() {
	if s.txOpen && s.refused != 0 {
		s.srv.cfg.Metrics.SMTPTransaction(s.mode.String(), s.refused)
	}
	s.txOpen, s.refused = false, 0
}

// replyCode is the code of the reply go-smtp writes for err, the
// outcome of MAIL, RCPT or the data; 0 when the client is gone or gave up
// the data (BDAT then RSET), and nothing is written.
func replyCode(err error) int {
	var se *smtp.SMTPError
	var ne net.Error
	switch {
	case err == nil:
		return 250
	case errors.As(err, &se):
		return se.Code
	case errors.Is(err, smtp.ErrDataReset), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.As(err, &ne):
		return 0
	}
	return 554 // go-smtp's reply to any other error
}

// hardError counts a refused RCPT or failed AUTH. Past the limit it writes
// 421 itself, closes the connection and returns the error for go-smtp to
// (fail to) write: the client is gone either way.
func (s *session) hardError(err *smtp.SMTPError) error {
	s.mu.Lock()
	s.hardErrs++
	n := s.hardErrs
	s.mu.Unlock()
	if n < maxHardErrors {
		return err
	}
	s.logger().Warn("smtp connection closed: too many errors", "errors", n)
	nc := s.conn.Conn()
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(nc, "%d %d.%d.%d %s\r\n", err.Code, err.EnhancedCode[0], err.EnhancedCode[1], err.EnhancedCode[2], err.Message)
	fmt.Fprintf(nc, "421 4.7.0 %s\r\n", errTooManyErrs.Message)
	s.conn.Close()
	return errTooManyErrs
}

// AuthMechanisms: none on port 25 (so AUTH is not advertised), PLAIN and
// LOGIN on submission (go-smtp advertises them only after TLS).
func (s *session) AuthMechanisms() []string {
	if s.mode == MX {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.mode == MX {
		return nil, errAuthOnMX
	}
	s.mu.Lock()
	authed := s.acct != nil
	s.mu.Unlock()
	if authed {
		return nil, &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Already authenticated"}
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && !strings.EqualFold(identity, user) {
				return s.hardError(&smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authorization identity must match the user name"})
			}
			return s.login(user, pass)
		}), nil
	case sasl.Login:
		return newLoginServer(s.login), nil
	}
	return nil, errAuthMech
}

func (s *session) login(user, pass string) error {
	acct, err := s.srv.auth.Authenticate(s.srv.ctx, s.remote, user, pass)
	log := s.logger().With("user", clip(user))
	switch {
	case err == nil:
		s.mu.Lock()
		s.acct = &acct
		s.mu.Unlock()
		if s.tracked != nil {
			s.tracked.authenticated()
		}
		log.Info("smtp login", "account", acct.Address)
		return nil
	case errors.Is(err, auth.ErrBadCredentials):
		s.srv.cfg.Metrics.AuthFailure("smtp", false)
		log.Warn("smtp login failed")
		return s.hardError(errAuthFailed)
	case errors.Is(err, auth.ErrTooManyFailures):
		s.srv.cfg.Metrics.AuthFailure("smtp", true)
		log.Warn("smtp login refused: too many failures from this address")
		return s.hardError(errAuthLocked)
	default:
		log.Error("smtp login error", "error", err)
		return errAuthTemp
	}
}

// Mail starts a transaction; a refused MAIL counts as a transaction
// ended by its reply.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	err := s.mail(from, opts)
	if err != nil {
		if code := replyCode(err); code != 0 {
			s.srv.cfg.Metrics.SMTPTransaction(s.mode.String(), code)
		}
		return err
	}
	s.mu.Lock()
	s.txOpen, s.refused = true, 0
	s.mu.Unlock()
	return nil
}

func (s *session) mail(from string, opts *smtp.MailOptions) error {
	s.mu.Lock()
	acct := s.acct
	s.mu.Unlock()
	log := s.logger()
	if s.mode == MX {
		if from != "" {
			if err := checkSender(from); err != nil {
				log.Info("smtp sender refused", "from", clip(from), "reason", err.Error())
				if errors.Is(err, address.ErrTooLong) {
					return s.hardError(errSenderLong)
				}
				return s.hardError(errBadSender)
			}
		}
	} else {
		if acct == nil {
			return s.hardError(errAuthRequired)
		}
		if _, err := address.Parse(from); errors.Is(err, address.ErrTooLong) {
			log.Info("smtp sender refused", "user", acct.Address, "from", clip(from), "reason", err.Error())
			return s.hardError(errSenderLong)
		}
		if !senderAllowed(*acct, from, s.lookupDomain) {
			log.Info("smtp sender refused: not the user's address", "user", acct.Address, "from", clip(from))
			return s.hardError(errSenderNotOwn)
		}
		if err := s.mayStart(*acct); err != nil {
			return err
		}
	}
	if opts != nil && opts.Size > 0 && !s.srv.spool.Fits(opts.Size) {
		// RFC 1870 section 6.1: the size would fit, but not now.
		log.Warn("smtp sender refused: no room for the declared size now", "from", from, "size", opts.Size,
			"in_flight", s.srv.spool.InFlight(), "budget", s.srv.spool.Budget())
		return errSizeNoRoom
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.from, s.fromSet, s.rcpts = from, true, nil
	s.size = 0
	if opts != nil {
		s.size = opts.Size
	}
	// A transaction is in flight from MAIL on: a shutdown lets it finish
	// (the client may be between the 354 and the first DATA byte).
	if s.tracked != nil {
		s.tracked.busy.Store(true)
	}
	return nil
}

// The store lookups addr.go's checks use, bound to the server's context.
func (s *session) lookupDomain(d string) (store.Domain, error) {
	return s.srv.store.Domain(s.srv.ctx, d)
}
func (s *session) resolve(addr string) ([]string, error) {
	return recipientAccounts(s.srv.ctx, s.srv.store, addr)
}
func (s *session) isLocalDomain(d string) bool { return s.srv.store.IsLocalDomain(s.srv.ctx, d) }

// Rcpt adds a recipient; a refusal is kept for the transaction's count.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	err := s.rcpt(to, opts)
	if code := replyCode(err); err != nil && code != 0 {
		s.mu.Lock()
		s.refused = code
		s.mu.Unlock()
	}
	return err
}

func (s *session) rcpt(to string, opts *smtp.RcptOptions) error {
	s.mu.Lock()
	size := s.size
	s.mu.Unlock()
	if err := s.refuseListed(to); err != nil { // port 25 only: s.check is nil on submission
		return err
	}
	log := s.logger().With("rcpt", clip(to))
	accounts, class, err := classifyRecipient(to, s.resolve, s.isLocalDomain)
	switch class {
	case rcptLocal:
	case rcptTooLong:
		log.Info("smtp recipient refused", "reason", err.Error())
		return s.hardError(errRcptLong)
	case rcptNoSuchUser:
		if orig, ok := s.reverseSRS(to); ok {
			// A bounce to a forwarded message: back to its sender.
			a, c, _ := classifyRecipient(orig, s.resolve, s.isLocalDomain)
			switch c {
			case rcptLocal:
				log.Info("smtp recipient: SRS bounce to a local sender", "orig", orig)
				accounts = a
			case rcptRemote:
				log.Info("smtp recipient: SRS bounce to a remote sender", "orig", orig)
				return s.addRemote(to, orig)
			default:
				log.Info("smtp recipient refused: SRS bounce to an unknown sender", "orig", orig)
				return s.hardError(errNoSuchUser)
			}
			break
		}
		log.Info("smtp recipient refused: no such user")
		return s.hardError(errNoSuchUser)
	case rcptRemote:
		if s.mode == MX {
			log.Info("smtp recipient refused: relaying denied")
			return s.hardError(errRelayDenied)
		}
		if s.srv.cfg.Outbound {
			return s.addRemote(to, to)
		}
		log.Info("smtp recipient refused: outbound delivery not enabled")
		return s.hardError(errNoOutbound)
	case rcptRouting:
		log.Info("smtp recipient refused: routing form", "reason", err.Error())
		return s.hardError(errRelayDenied)
	default: // rcptTempFail
		log.Error("smtp recipient lookup failed", "error", err)
		return errTempLocal
	}
	// A mailbox that is full (or would be with the SIZE declared) is
	// refused here; postmaster@ reaches those of its admins with room.
	var room []string
	for _, account := range accounts {
		a, err := s.srv.store.Account(s.srv.ctx, account)
		if err != nil {
			log.Error("smtp account lookup failed", "error", err)
			return errTempLocal
		}
		if a.Quota > 0 && (a.Used >= a.Quota || a.Used+size > a.Quota) {
			log.Info("smtp recipient account full", "account", a.Address, "used", a.Used, "quota", a.Quota, "size", size)
			continue
		}
		room = append(room, account)
	}
	if len(room) == 0 {
		log.Info("smtp recipient refused: mailbox full")
		return errMailboxFull
	}
	if err := s.countRecipient(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcpts = append(s.rcpts, rcpt{given: to, accounts: room})
	return nil
}

// reverseSRS returns the original sender of an SRS address of ours.
func (s *session) reverseSRS(to string) (string, bool) {
	if s.srv.cfg.ReverseSRS == nil {
		return "", false
	}
	orig, err := s.srv.cfg.ReverseSRS(to)
	return orig, err == nil
}

// addRemote accepts a remote recipient: submission (authenticated, so no
// open relay) or an SRS bounce going back.
func (s *session) addRemote(given, addr string) error {
	if err := s.countRecipient(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcpts = append(s.rcpts, rcpt{given: given, remote: addr})
	return nil
}

// Data receives and delivers the message; its reply ends the transaction.
func (s *session) Data(r io.Reader) error {
	s.mu.Lock()
	s.txOpen = false // counted here, whatever Reset does meanwhile (BDAT)
	s.mu.Unlock()
	err := s.data(r)
	if code := replyCode(err); code != 0 {
		s.srv.cfg.Metrics.SMTPTransaction(s.mode.String(), code)
	}
	return err
}

func (s *session) data(r io.Reader) error {
	if s.tracked != nil {
		s.tracked.transfer(true)
		defer s.tracked.transfer(false)
	}
	s.mu.Lock()
	from := s.from
	rcpts := append([]rcpt(nil), s.rcpts...)
	acct := s.acct
	s.mu.Unlock()
	log := s.logger()

	if h := s.srv.testHookData; h != nil {
		h()
	}
	if len(rcpts) == 0 { // go-smtp does not call Data without recipients
		return errTempLocal
	}
	env := delivery.Envelope{
		QueueID:    delivery.NewQueueID(),
		Source:     delivery.MX,
		From:       from,
		RemoteAddr: s.remote,
		Helo:       s.helo,
		TLS:        s.tls,
	}
	if acct != nil {
		env.Source = delivery.Submission
		env.AuthUser = acct.Address
	}
	for _, r := range rcpts {
		switch {
		case r.remote != "":
			if !slices.ContainsFunc(env.Remote, func(x string) bool { return strings.EqualFold(x, r.remote) }) {
				env.Remote = append(env.Remote, r.remote)
			}
		default:
			for _, a := range r.accounts {
				if !slices.Contains(env.Recipients, a) {
					env.Recipients = append(env.Recipients, a)
				}
			}
		}
	}
	forRcpt := ""
	if len(rcpts) == 1 {
		forRcpt = rcpts[0].given
	}

	// The message goes into the spool: memory up to a small buffer, then
	// a file, within the budget of bytes in flight. It is held until
	// delivery returns.
	msg := s.srv.spool.New()
	defer msg.Close()
	hdr := receivedHeader(receivedInfo{
		Helo: s.helo, IP: ipOf(s.remote), Hostname: s.srv.cfg.Hostname,
		TLS: s.tls, Auth: acct != nil, QueueID: env.QueueID, For: forRcpt, Date: time.Now(),
	})
	if err := s.receive(msg, hdr, r, from); err != nil {
		return err
	}
	head, tail, err := msg.Finish()
	if err != nil {
		log.Error("smtp message not received: spool", "from", from, "error", err)
		return errTempLocal
	}
	// The blocklist lookups ran while the data came in.
	env.DNSBL = s.check.wait(s.srv.ctx)
	// Header fields only Yubin writes are forgeries when they come in.
	head = mailheader.StripOwned(head, s.srv.cfg.Hostname)

	_, err = s.srv.deliver.DeliverSpooled(s.srv.ctx, env, head, tail)
	var qe *store.QuotaError
	var rj *delivery.Reject
	switch {
	case err == nil:
		// Committed to disk. A 250 "error" gives the client the queue id.
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + env.QueueID}
	case errors.As(err, &rj):
		return &smtp.SMTPError{Code: rj.Code, EnhancedCode: smtp.EnhancedCode(rj.Enhanced), Message: rj.Text}
	case errors.As(err, &qe):
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2},
			Message: fmt.Sprintf("Mailbox full: the message (%d bytes) does not fit into the quota of <%s>", msg.Size(), qe.Account)}
	default:
		return errTempLocal
	}
}

// copyBufSize is the size of the buffers DATA is read through (the spool
// copies from them); copyBufs keeps them.
const copyBufSize = 16 << 10

var copyBufs = sync.Pool{New: func() any { return new([copyBufSize]byte) }}

// receive writes hdr into msg, then DATA from r, bare LFs turned into
// CRLF, and returns the reply for what went wrong, if anything. When the
// spool refuses more (the budget of bytes in flight is used up) or a line
// is longer than MaxLineLength, go-smtp reads and drops the rest of DATA,
// and the connection goes on.
func (s *session) receive(msg *spool.Message, hdr []byte, r io.Reader, from string) error {
	log := s.logger().With("from", from)
	if _, err := msg.Write(hdr); err != nil {
		return s.spoolError(log, err)
	}
	buf := copyBufs.Get().(*[copyBufSize]byte)
	defer copyBufs.Put(buf)
	w := &spool.CRLFWriter{W: msg}
	lines := lineMeter{max: s.srv.cfg.MaxLineLength}
	for {
		n, err := r.Read(buf[:])
		if n > 0 {
			if !lines.fits(buf[:n]) {
				log.Info("smtp message refused: line too long", "max", lines.max)
				return s.lineTooLong()
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return s.spoolError(log, werr)
			}
		}
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, smtp.ErrDataTooLarge):
			log.Info("smtp message refused: too large", "max", s.srv.cfg.MaxMessageSize)
			return smtp.ErrDataTooLarge
		case errors.Is(err, smtp.ErrTooLongLine):
			// Past go-smtp's limit (Serve): the same reply, then go-smtp
			// closes the connection.
			log.Info("smtp message refused: line too long, closing the connection", "max", lines.max)
			return s.lineTooLong()
		case err != nil:
			log.Info("smtp message not received", "error", err)
			return err
		}
	}
}

// lineTooLong is the reply to a message with a line over MaxLineLength:
// 554, a DATA reply RFC 5321 section 4.3.2 allows, and 5.6.0 as it is the
// content that is refused. (Postfix takes such lines, cutting them into
// records it joins again on delivery; Yubin stores a message as it came.)
func (s *session) lineTooLong() error {
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: fmt.Sprintf("Message refused: it has a line longer than %d bytes", s.srv.cfg.MaxLineLength)}
}

// lineMeter follows the length of the lines of a message, their line ends
// included, across the reads it is given.
type lineMeter struct {
	max int // the longest line allowed
	n   int // bytes of the current line so far
}

// fits reports whether the lines in p, which continues what came before,
// are all within max.
func (m *lineMeter) fits(p []byte) bool {
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			m.n += len(p)
			return m.n <= m.max
		}
		if m.n+i+1 > m.max {
			return false
		}
		m.n, p = 0, p[i+1:]
	}
}

// spoolError is the reply to a failed spool write: 451 4.3.1 when the
// budget or the disk is full, 451 4.3.0 otherwise.
func (s *session) spoolError(log *slog.Logger, err error) error {
	if errors.Is(err, spool.ErrBudget) || errors.Is(err, syscall.ENOSPC) {
		log.Warn("smtp message refused: no room for more data in flight",
			"in_flight", s.srv.spool.InFlight(), "budget", s.srv.spool.Budget(), "error", err)
		return errNoStorage
	}
	log.Error("smtp message not received: spool", "error", err)
	return errTempLocal
}

func ipOf(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}
