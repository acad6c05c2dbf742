package imapd

import (
	"bufio"
	"bytes"
	"io"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"yubin/store"
)

// records returns the store records of the given UIDs (ascending), with
// nil holes for messages expunged meanwhile by someone else. Reading the
// whole mailbox once is cheaper when many are asked for.
func (s *session) records(v *view, uids []uint32) ([]*store.Message, error) {
	var msgs []store.Message
	var err error
	if len(uids) > 64 && len(uids)*4 > len(v.uids) {
		msgs, _, err = s.srv.st.Messages(s.account, v.name)
	} else {
		msgs, _, err = s.srv.st.MessagesByUID(s.account, v.name, uids)
	}
	if err != nil {
		return nil, err
	}
	out := make([]*store.Message, len(uids))
	j := 0
	for i, uid := range uids {
		for j < len(msgs) && msgs[j].UID < uid {
			j++
		}
		if j < len(msgs) && msgs[j].UID == uid {
			out[i] = &msgs[j]
		}
	}
	return out, nil
}

func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	v := s.sel
	idx, err := v.resolve(numSet)
	if err != nil || len(idx) == 0 {
		return err
	}
	uids := v.uidsAt(idx)
	msgs, err := s.records(v, uids)
	if err != nil {
		return s.storeError(err, imap.ResponseCodeNonExistent)
	}
	// Fetching a body section without PEEK sets \Seen (RFC 3501 6.4.5),
	// and the new flags are returned with the data.
	changed := map[uint32]bool{}
	if !v.readOnly && setsSeen(options) {
		var unseen []uint32
		for _, m := range msgs {
			if m != nil && !hasFlag(m.Flags, `\Seen`) {
				unseen = append(unseen, m.UID)
			}
		}
		if len(unseen) > 0 {
			res, err := s.srv.st.SetFlags(s.ctx(), s.account, v.name, unseen, store.FlagsAdd, []string{`\Seen`})
			if err != nil {
				return s.storeError(err, imap.ResponseCodeNonExistent)
			}
			v.dropOwnFlags(res)
			byUID := map[uint32][]string{}
			for _, m := range res {
				byUID[m.UID] = m.Flags
			}
			for _, m := range msgs {
				if f, ok := byUID[m.UID]; m != nil && ok {
					m.Flags = f
					changed[m.UID] = true
				}
			}
		}
	}
	for i, m := range msgs {
		if m == nil {
			continue // expunged by another session; the client hears of it later
		}
		rw := w.CreateMessage(uint32(idx[i] + 1))
		if err := s.fetchOne(rw, v, m, options, changed[m.UID]); err != nil {
			rw.Close()
			return err
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

func setsSeen(options *imap.FetchOptions) bool {
	for _, bs := range options.BodySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

func (s *session) fetchOne(rw *imapserver.FetchResponseWriter, v *view, m *store.Message, options *imap.FetchOptions, flagsChanged bool) error {
	if options.UID {
		rw.WriteUID(imap.UID(m.UID))
	}
	if options.Flags || flagsChanged {
		rw.WriteFlags(toIMAPFlags(m.Flags))
	}
	if options.InternalDate {
		rw.WriteInternalDate(m.Date)
	}
	if options.RFC822Size {
		rw.WriteRFC822Size(m.Size)
	}
	open := func() (io.ReadCloser, error) {
		r, _, err := s.srv.st.OpenMessage(s.account, v.name, m.UID)
		return r, err
	}
	if options.Envelope {
		h, err := s.header(open, m)
		if err != nil {
			return err
		}
		rw.WriteEnvelope(imapserver.ExtractEnvelope(h))
	}
	if options.BodyStructure != nil {
		r, err := open()
		if err != nil {
			return s.storeError(err, imap.ResponseCodeNonExistent)
		}
		bs := imapserver.ExtractBodyStructure(bufio.NewReaderSize(r, 32<<10))
		r.Close()
		rw.WriteBodyStructure(bs)
	}
	for _, bs := range options.BodySection {
		if err := s.writeSection(rw, open, m, bs); err != nil {
			return err
		}
	}
	return nil
}

// header reads and parses a message's header section.
func (s *session) header(open func() (io.ReadCloser, error), m *store.Message) (textproto.Header, error) {
	r, err := open()
	if err != nil {
		return textproto.Header{}, s.storeError(err, imap.ResponseCodeNonExistent)
	}
	defer r.Close()
	return readHeader(r, m.HeaderSize), nil
}

var bufioPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// readHeader parses at most size bytes of header section from r.
func readHeader(r io.Reader, size int64) textproto.Header {
	br := bufioPool.Get().(*bufio.Reader)
	br.Reset(io.LimitReader(r, size))
	h, _ := textproto.ReadHeader(br)
	br.Reset(nil)
	bufioPool.Put(br)
	return h
}

// writeSection writes one BODY[...] item. The whole message, its header
// and its text are streamed from the store, with partial ranges applied
// while streaming; other sections (parts, header fields) are extracted in
// memory by the library.
func (s *session) writeSection(rw *imapserver.FetchResponseWriter, open func() (io.ReadCloser, error), m *store.Message, bs *imap.FetchItemBodySection) error {
	start, end := int64(-1), int64(-1)
	if len(bs.Part) == 0 && len(bs.HeaderFields) == 0 && len(bs.HeaderFieldsNot) == 0 {
		switch bs.Specifier {
		case imap.PartSpecifierNone:
			start, end = 0, m.Size
		case imap.PartSpecifierHeader:
			start, end = 0, m.HeaderSize
		case imap.PartSpecifierText:
			start, end = m.HeaderSize, m.Size
		}
	}
	if start < 0 {
		r, err := open()
		if err != nil {
			return s.storeError(err, imap.ResponseCodeNonExistent)
		}
		b := imapserver.ExtractBodySection(r, bs) // applies bs.Partial
		r.Close()
		wc := rw.WriteBodySection(bs, int64(len(b)))
		if _, err := wc.Write(b); err != nil {
			return err
		}
		return wc.Close()
	}
	if p := bs.Partial; p != nil {
		start = min(start+p.Offset, end)
		end = min(end, start+p.Size)
	}
	size := end - start
	wc := rw.WriteBodySection(bs, size)
	if size > 0 {
		r, err := open()
		if err != nil {
			r = io.NopCloser(bytes.NewReader(nil))
			s.log.Warn("message gone while fetching", "uid", m.UID, "err", err)
		}
		if _, err := io.CopyN(io.Discard, r, start); err != nil {
			s.log.Warn("message gone while fetching", "uid", m.UID, "err", err)
		}
		err = copyExactly(wc, r, size)
		r.Close()
		if err != nil {
			return err
		}
	}
	return wc.Close()
}

// copyExactly copies n bytes. If the message disappears half-way (it was
// expunged and its bytes freed), it pads the literal so that the protocol
// stays in step.
func copyExactly(w io.Writer, r io.Reader, n int64) error {
	ew := &errWriter{w: w}
	k, _ := io.CopyN(ew, r, n)
	if ew.err != nil {
		return ew.err
	}
	pad := bytes.Repeat([]byte{' '}, 4096)
	for k < n {
		c := min(n-k, int64(len(pad)))
		m, err := w.Write(pad[:c])
		if err != nil {
			return err
		}
		k += int64(m)
	}
	return nil
}

// errWriter remembers a write error, to tell it from a read error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}
