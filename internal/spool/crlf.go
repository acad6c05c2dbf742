package spool

import (
	"bytes"
	"io"
)

// CRLFWriter writes to W what is written to it with every bare LF turned
// into CRLF, across writes (messages are stored with CRLF line ends). CRLF
// pairs and bare CRs are kept as they are.
type CRLFWriter struct {
	W  io.Writer
	cr bool // the last byte written was a CR
}

func (c *CRLFWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if _, err := c.W.Write(p); err != nil {
				return 0, err
			}
			c.cr = p[len(p)-1] == '\r'
			break
		}
		line := p[:i+1]
		if (i == 0 && !c.cr) || (i > 0 && p[i-1] != '\r') {
			line = p[:i] // bare LF: write the line, then CRLF
		}
		if _, err := c.W.Write(line); err != nil {
			return 0, err
		}
		if len(line) == i {
			if _, err := c.W.Write(crlf); err != nil {
				return 0, err
			}
		}
		c.cr = false
		p = p[i+1:]
	}
	return n, nil
}

var crlf = []byte("\r\n")
