// Package dovecottest runs a Dovecot IMAP server of the test's own — the
// old provider mail is moved from — on loopback ports, with a temporary
// config, certificate, password file and Maildir, stopped at cleanup. It
// needs Debian's dovecot-imapd (make test installs it); without it the
// test skips with the reason.
package dovecottest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"yubin/internal/testutil"
	"yubin/internal/testutil/tlstest"
)

// Server is a running Dovecot.
type Server struct {
	IMAP  string // host:port, STARTTLS
	IMAPS string // host:port, implicit TLS
	// CAFile is the PEM certificate the server's TLS is verified with;
	// TLS the client configuration that trusts it.
	CAFile string
	TLS    *tls.Config
	// Users are the accounts, name → password.
	Users map[string]string
	Log   *testutil.Buffer
}

// Start runs Dovecot with users (name → password) and waits until it
// answers on both ports. A special-use \Sent mailbox is called "Sent
// Messages" and the hierarchy separator is "." (Dovecot's default for
// Maildir), so that an importer has names to map.
func Start(t testing.TB, users map[string]string) *Server {
	t.Helper()
	bin := "/usr/sbin/dovecot"
	if _, err := os.Stat(bin); err != nil {
		bin = testutil.NeedCommand(t, "dovecot")
	}
	dir := t.TempDir()
	cert := tlstest.SelfSigned(t, "127.0.0.1")
	s := &Server{CAFile: cert.File, TLS: cert.Client, Users: users, Log: &testutil.Buffer{}}

	// Run as root (make test, CI), Dovecot drops to unprivileged users:
	// its own for its services, nobody for the mail, which must then be
	// able to reach the directory. Run as anyone else, it runs as that
	// user throughout.
	internal, login, mailUser, mailGroup := "dovecot", "dovenull", "nobody", "nogroup"
	if os.Getuid() != 0 {
		u, err := user.Current()
		testutil.Must(t, err)
		g, err := user.LookupGroupId(u.Gid)
		testutil.Must(t, err)
		internal, login, mailUser, mailGroup = u.Username, u.Username, u.Username, g.Name
	} else {
		if _, err := user.Lookup("dovenull"); err != nil {
			t.Skip("SKIP: the users dovecot and dovenull do not exist (Debian's dovecot-core makes them)")
		}
		if _, err := user.LookupGroup(mailGroup); err != nil {
			mailGroup = "nobody"
		}
		// Every directory above the Maildir must be searchable by nobody.
		for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
				testutil.Must(t, os.Chmod(d, fi.Mode().Perm()|0o011))
			}
		}
		// tlstest's key is read by Dovecot's config process, as root.
	}
	mail := filepath.Join(dir, "mail")
	testutil.Must(t, os.Mkdir(mail, 0o777))
	testutil.Must(t, os.Chmod(mail, 0o777))
	var pw strings.Builder
	for name, pass := range users {
		fmt.Fprintf(&pw, "%s:{PLAIN}%s::::::\n", name, pass)
	}
	passwd := filepath.Join(dir, "passwd")
	testutil.Must(t, os.WriteFile(passwd, []byte(pw.String()), 0o644))
	key := filepath.Join(filepath.Dir(cert.File), "key.pem")

	for try := 0; ; try++ {
		imapPort, imapsPort := freePort(t), freePort(t)
		conf := filepath.Join(dir, "dovecot.conf")
		testutil.Must(t, os.WriteFile(conf, []byte(fmt.Sprintf(config,
			dir, dir, cert.File, key, mailUser, mailGroup, internal, login,
			passwd, mail, mail, imapPort, imapsPort)), 0o644))
		cmd := exec.Command(bin, "-F", "-c", conf)
		cmd.Stdout = s.Log
		cmd.Stderr = s.Log
		testutil.Must(t, cmd.Start())
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
		s.IMAP = fmt.Sprintf("127.0.0.1:%d", imapPort)
		s.IMAPS = fmt.Sprintf("127.0.0.1:%d", imapsPort)
		if err := waitGreeting(s.IMAP, false, exited); err == nil {
			if err := waitGreeting(s.IMAPS, true, exited); err == nil {
				return s
			}
		}
		// A port taken between freePort and Dovecot's bind: try again.
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if try == 2 || !strings.Contains(s.Log.String(), "in use") {
			t.Fatalf("dovecot did not start:\n%s", s.Log.String())
		}
	}
}

const config = `base_dir = %s/run
state_dir = %s/state
instance_name = yubintest
log_path = /dev/stderr
info_log_path = /dev/stderr
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <%s
ssl_key = <%s
auth_mechanisms = plain login
auth_failure_delay = 0
disable_plaintext_auth = yes
mail_uid = %s
mail_gid = %s
first_valid_uid = 1
first_valid_gid = 1
default_internal_user = %s
default_login_user = %s
passdb {
  driver = passwd-file
  args = %s
}
userdb {
  driver = static
  args = home=%s/%%u
}
mail_location = maildir:%s/%%u/Maildir
namespace inbox {
  inbox = yes
  mailbox "Sent Messages" {
    special_use = \Sent
    auto = create
  }
}
service imap-login {
  chroot =
  inet_listener imap {
    port = %d
  }
  inet_listener imaps {
    port = %d
    ssl = yes
  }
}
service anvil {
  chroot =
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
`

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitGreeting waits until addr greets with "* OK" (after a TLS
// handshake with useTLS), or the process exits; 20 seconds at most.
func waitGreeting(addr string, useTLS bool, exited <-chan struct{}) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if useTLS {
				c = tls.Client(c, &tls.Config{InsecureSkipVerify: true})
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "* OK") {
				return fmt.Errorf("%s: greeting %q, %v", addr, line, err)
			}
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("dovecot exited")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no answer in 20s: %v", addr, err)
		}
	}
}

// Message is one message to put in a mailbox.
type Message struct {
	Flags []imap.Flag
	Date  time.Time
	Raw   []byte
}

// Append logs in as user and APPENDs msgs to mailbox (made first when it
// does not exist), with their flags and internal dates.
func (s *Server) Append(t testing.TB, user, mailbox string, msgs ...Message) {
	t.Helper()
	c, err := imapclient.DialTLS(s.IMAPS, &imapclient.Options{TLSConfig: s.TLS})
	testutil.Must(t, err)
	defer c.Close()
	testutil.Must(t, c.Login(user, s.Users[user]).Wait())
	if mailbox != "INBOX" {
		if err := c.Create(mailbox, nil).Wait(); err != nil && !strings.Contains(err.Error(), "ALREADYEXISTS") {
			t.Fatalf("CREATE %s: %v", mailbox, err)
		}
	}
	for _, m := range msgs {
		cmd := c.Append(mailbox, int64(len(m.Raw)), &imap.AppendOptions{Flags: m.Flags, Time: m.Date})
		_, err := cmd.Write(m.Raw)
		testutil.Must(t, err)
		testutil.Must(t, cmd.Close())
		_, err = cmd.Wait()
		testutil.Must(t, err)
	}
	testutil.Must(t, c.Logout().Wait())
}
