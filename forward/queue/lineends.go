package queue

import "bytes"

// crlfOnly returns msg with every bare CR and every bare LF turned into
// CRLF, so that what goes to the next hop has one kind of line end only:
// a "\r.\r" that some server might read as the end of DATA (SMTP
// smuggling) becomes a line holding a dot, which the DATA writer
// dot-stuffs. "\r\r\n" is two line ends. msg itself is returned when it
// has nothing to change.
//
// Mail arrives with CRLF (bare LFs are stored as CRLF), but bare CRs are
// kept in the store; they are normalised here, on the way out, before
// DKIM signing, so the signature covers exactly what is sent.
func crlfOnly(msg []byte) []byte {
	crlf := bytes.Count(msg, []byte("\r\n"))
	bare := bytes.Count(msg, []byte("\r")) + bytes.Count(msg, []byte("\n")) - 2*crlf
	if bare == 0 {
		return msg
	}
	out := make([]byte, 0, len(msg)+bare)
	for len(msg) > 0 {
		i := bytes.IndexAny(msg, "\r\n")
		if i < 0 {
			return append(out, msg...)
		}
		out = append(out, msg[:i]...)
		out = append(out, '\r', '\n')
		if msg[i] == '\r' && i+1 < len(msg) && msg[i+1] == '\n' {
			i++
		}
		msg = msg[i+1:]
	}
	return out
}
