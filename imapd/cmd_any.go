package imapd

import (
	"encoding/base64"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"yubin/internal/auth"
	"yubin/internal/netserve"
)

// Commands valid in any state, and logging in (RFC 3501 6.1, 6.2).
func init() {
	register("CAPABILITY", commandSpec{run: (*conn).cmdCapability, states: anyState, updates: true})
	register("NOOP", commandSpec{run: (*conn).cmdNoop, states: anyState, updates: true})
	register("LOGOUT", commandSpec{run: (*conn).cmdLogout, states: anyState})
	register("STARTTLS", commandSpec{run: (*conn).cmdStartTLS, states: notAuthState})
	register("LOGIN", commandSpec{run: (*conn).cmdLogin, states: notAuthState})
	register("AUTHENTICATE", commandSpec{run: (*conn).cmdAuthenticate, states: notAuthState})
	register("ID", commandSpec{run: (*conn).cmdID, states: anyState, updates: true})
	register("ENABLE", commandSpec{run: (*conn).cmdEnable, states: authState})
}

// authCaps are the capabilities of a logged-in session; extensions add
// theirs to it where they are implemented.
var authCaps = []string{"IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE",
	"UIDPLUS", "MOVE", "UNSELECT", "CHILDREN", "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS",
	"ESEARCH", "STATUS=SIZE", "QUOTA", "QUOTA=RES-STORAGE"}

// capabilities is the CAPABILITY list for the connection's state.
func (c *conn) capabilities() string {
	if c.state != stateNotAuth {
		return strings.Join(authCaps, " ") + " APPENDLIMIT=" + strconv.FormatInt(c.srv.cfg.AppendLimit, 10)
	}
	caps := "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE"
	if c.conf != nil && !c.tls {
		caps += " STARTTLS"
	}
	if c.tls || c.srv.cfg.AllowInsecureAuth {
		caps += " AUTH=PLAIN"
	} else {
		caps += " LOGINDISABLED"
	}
	return caps
}

func (c *conn) cmdCapability(cmd *command) error {
	if err := c.r.End(); err != nil {
		return err
	}
	c.untagged("CAPABILITY " + c.capabilities())
	return nil
}

func (c *conn) cmdNoop(cmd *command) error { return c.r.End() }

func (c *conn) cmdLogout(cmd *command) error {
	if err := c.r.End(); err != nil {
		return err
	}
	c.untagged("BYE Logging out")
	c.state = stateLogout
	return nil
}

func (c *conn) cmdStartTLS(cmd *command) error {
	if err := c.r.End(); err != nil {
		return err
	}
	if c.tls || c.conf == nil {
		return no("", "STARTTLS is not available")
	}
	c.reply(cmd.tag, cmd.name, okCode("", "Begin TLS negotiation now"))
	// Anything sent after STARTTLS before the handshake would be
	// injected into the TLS session (CVE-2011-0411): refuse it.
	if c.br.Buffered() > 0 {
		return errHungUp
	}
	deadline, _ := c.loginBy()
	hs := min(c.srv.cfg.HandshakeTimeout, time.Until(deadline))
	if hs <= 0 {
		return errHungUp
	}
	raw := c.raw
	c.handshake.Store(&raw)
	if c.stopping.Load() {
		raw.SetReadDeadline(time.Now())
	}
	tc, err := netserve.Handshake(raw, c.conf, hs)
	c.handshake.Store(nil)
	if err != nil {
		c.log.Debug("STARTTLS handshake failed", "err", err)
		return errHungUp
	}
	c.tls = true
	c.setConn(tc, deadline)
	return errReplied
}

// loginBy is the end of the pre-login time.
func (c *conn) loginBy() (time.Time, bool) {
	return c.started.Add(c.srv.cfg.PreAuthTimeout), true
}

// errReplied says the command wrote its own tagged reply; errHungUp that
// the connection is to be closed without one.
var (
	errReplied = errors.New("replied")
	errHungUp  = errors.New("hung up")
)

// canLogin refuses a login without TLS, unless AllowInsecureAuth.
func (c *conn) canLogin() error {
	if !c.tls && !c.srv.cfg.AllowInsecureAuth {
		return no("PRIVACYREQUIRED", "TLS is required to log in; use STARTTLS")
	}
	return nil
}

func (c *conn) cmdLogin(cmd *command) error {
	user, err := arg(c, c.r.AString)
	if err != nil {
		return err
	}
	pass, err := arg(c, c.r.AString)
	if err != nil {
		return err
	}
	if err := c.r.End(); err != nil {
		return err
	}
	if err := c.canLogin(); err != nil {
		return err
	}
	return c.login(user, pass)
}

func (c *conn) cmdAuthenticate(cmd *command) error {
	mech, err := arg(c, c.r.Atom)
	if err != nil {
		return err
	}
	var initial string
	hasInitial := false
	if !c.r.AtEnd() {
		if initial, err = arg(c, func() (string, error) {
			return c.r.Run(func(b byte) bool { return b != ' ' }), nil
		}); err != nil {
			return err
		}
		hasInitial = true
	}
	if err := c.r.End(); err != nil {
		return err
	}
	if !strings.EqualFold(mech, "PLAIN") {
		return no("CANNOT", "Unsupported authentication mechanism %s", mech)
	}
	if err := c.canLogin(); err != nil {
		return err
	}
	if !hasInitial {
		c.w.Raw("+ ").CRLF()
		if err := c.w.Flush(); err != nil {
			return err
		}
		if err := c.r.Begin(); err != nil {
			if c.r.Err() != nil {
				return err
			}
			return bad("Authentication response too long")
		}
		initial = c.r.Rest()
	}
	if initial == "*" {
		return bad("Authentication canceled")
	}
	if initial == "=" {
		initial = ""
	}
	b, err := base64.StdEncoding.DecodeString(initial)
	if err != nil {
		return bad("Invalid base64 in authentication response")
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 3 {
		return bad("Invalid PLAIN authentication response")
	}
	if parts[0] != "" && parts[0] != parts[1] {
		return no("AUTHORIZATIONFAILED", "Cannot act as another user")
	}
	return c.login(parts[1], parts[2])
}

// login checks credentials; failures are rate-limited per client address.
func (c *conn) login(user, pass string) error {
	acct, err := c.srv.au.Authenticate(c.ctx, c.raw.RemoteAddr(), user, pass)
	if errors.Is(err, auth.ErrTooManyFailures) {
		c.srv.cfg.Metrics.AuthFailure("imap", true)
		c.log.Warn("login refused: too many failures", "user", user)
		return no("UNAVAILABLE", "Too many failed logins; try again later")
	}
	if errors.Is(err, auth.ErrUnavailable) {
		c.log.Error("login not checked", "user", user, "err", err)
		return no("UNAVAILABLE", "Cannot check credentials now; try again later")
	}
	if err != nil {
		if errors.Is(err, auth.ErrBadCredentials) {
			c.srv.cfg.Metrics.AuthFailure("imap", false)
		}
		c.log.Info("login failed", "user", user)
		return no("AUTHENTICATIONFAILED", "Invalid credentials")
	}
	k := userIP{acct.Address, remoteIP(c.raw.RemoteAddr())}
	if !c.srv.loginFrom(k) {
		c.log.Warn("login refused: too many connections", "user", acct.Address, "max", c.srv.cfg.MaxUserIPConnections)
		return no("LIMIT", "Too many connections of this account from your address (at most %d)", c.srv.cfg.MaxUserIPConnections)
	}
	c.counted = &k
	c.account = acct.Address
	c.state = stateAuth
	c.tc.LoggedIn()
	c.log = c.log.With("account", c.account)
	c.log.Info("login")
	return okCode("CAPABILITY "+c.capabilities(), "Logged in")
}

// remoteIP is the IP address of a connection's peer.
func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// cmdID answers ID (RFC 2971) with the server's name; what the client says
// about itself is logged.
func (c *conn) cmdID(cmd *command) error {
	if err := c.r.SP(); err != nil {
		return err
	}
	var params []string
	if c.r.Peek() == '(' {
		n := 0
		if err := c.r.List(func() error {
			s, ok, err := c.r.NString()
			if err != nil {
				return err
			}
			if n++; n > 60 {
				return bad("Too many ID parameters")
			}
			if !ok {
				s = "NIL"
			}
			if len(s) > 1024 {
				return bad("ID value too long")
			}
			params = append(params, s)
			return nil
		}); err != nil {
			return err
		}
		if n%2 != 0 {
			return bad("ID parameters come in pairs")
		}
	} else if _, ok, err := c.r.NString(); err != nil || ok {
		if err == nil {
			err = bad("ID takes a list or NIL")
		}
		return err
	}
	if err := c.r.End(); err != nil {
		return err
	}
	if len(params) > 0 {
		c.log.Debug("client id", "id", strings.Join(params, " "))
	}
	c.untagged(`ID ("name" "Yubin")`)
	return nil
}

// enableable are the extensions ENABLE knows.
var enableable = map[string]bool{}

// cmdEnable enables extensions (RFC 5161).
func (c *conn) cmdEnable(cmd *command) error {
	var names []string
	for !c.r.AtEnd() {
		a, err := arg(c, c.r.Atom)
		if err != nil {
			return err
		}
		names = append(names, strings.ToUpper(a))
	}
	if len(names) == 0 {
		return bad("ENABLE needs a capability")
	}
	var done []string
	for _, n := range names {
		if enableable[n] && !c.enabled[n] {
			c.enabled[n] = true
			done = append(done, n)
			if n == "QRESYNC" {
				c.enabled["CONDSTORE"] = true
			}
		}
	}
	c.w.UTF8 = c.enabled["UTF8=ACCEPT"]
	c.untagged(strings.TrimSpace("ENABLED " + strings.Join(done, " ")))
	return nil
}
