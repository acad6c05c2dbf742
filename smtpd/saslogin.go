package smtpd

import (
	"errors"

	"github.com/emersion/go-sasl"
)

// loginServer is the server side of the (obsolete but still widely used)
// LOGIN SASL mechanism: the server asks "Username:" then "Password:"; an
// initial response, if given, is the user name. go-sasl has no server for
// it any more.
type loginServer struct {
	state    int
	user     string
	validate func(user, pass string) error
}

func newLoginServer(validate func(user, pass string) error) sasl.Server {
	return &loginServer{validate: validate}
}

const maxLoginField = 512

var errLoginSequence = errors.New("sasl: unexpected LOGIN response")

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	if len(response) > maxLoginField {
		return nil, true, errors.New("sasl: LOGIN response too long")
	}
	switch l.state {
	case 0:
		if response == nil { // no initial response
			l.state = 1
			return []byte("Username:"), false, nil
		}
		l.user = string(response)
		l.state = 2
		return []byte("Password:"), false, nil
	case 1:
		l.user = string(response)
		l.state = 2
		return []byte("Password:"), false, nil
	case 2:
		l.state = 3
		return nil, true, l.validate(l.user, string(response))
	}
	return nil, true, errLoginSequence
}
