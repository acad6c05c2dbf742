package web

import (
	"net"
	"net/http"
)

func (s *Server) clientsRoutes(rt *router) {
	rt.page("/mail/{account}/clients", s.clientsPage)
	rt.page("/mail/{account}/clients/mobileconfig", s.mobileConfig)
}

// clientSetting is one way a mail client connects.
type clientSetting struct {
	Protocol string // IMAP, POP3, SMTP
	Port     string
	Security string // message key: implicit TLS or STARTTLS
}

// clientsData is the client settings page.
type clientsData struct {
	Host     string
	User     string
	Settings []clientSetting
	Profile  bool // the .mobileconfig can be downloaded
}

// clientsPage shows the host, ports and security of every mail listener
// that is on.
func (s *Server) clientsPage(c *call) {
	p := s.cfg.Ports
	d := clientsData{Host: s.cfg.Hostname, User: c.account, Profile: s.cfg.Autoconfig != nil}
	for _, l := range []struct{ proto, addr, sec string }{
		{"IMAP", p.IMAPS, "clients.tls"}, {"IMAP", p.IMAP, "clients.starttls"},
		{"POP3", p.POP3S, "clients.tls"}, {"POP3", p.POP3, "clients.starttls"},
		{"SMTP", p.Submissions, "clients.tls"}, {"SMTP", p.Submission, "clients.starttls"},
	} {
		if _, port, err := net.SplitHostPort(l.addr); err == nil {
			d.Settings = append(d.Settings, clientSetting{Protocol: l.proto, Port: port, Security: l.sec})
		}
	}
	s.render(c, http.StatusOK, page{name: "clients", data: d})
}
