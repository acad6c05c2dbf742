package imapd

import (
	"bufio"
	"bytes"
	"io"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"yubin/internal/mailheader"
	"yubin/store"
)

// records returns the store records of the given UIDs (ascending), with
// nil holes for messages expunged meanwhile by someone else. Reading the
// whole mailbox once is cheaper when many are asked for.
func (s *session) records(v *view, uids []uint32) ([]*store.MessageInfo, error) {
	var msgs []store.MessageInfo
	var err error
	if len(uids) > 64 && len(uids)*4 > len(v.uids) {
		msgs, _, err = s.srv.st.Messages(s.ctx(), s.account, v.name)
	} else {
		msgs, _, err = s.srv.st.MessagesByUID(s.ctx(), s.account, v.name, uids)
	}
	if err != nil {
		return nil, err
	}
	out := make([]*store.MessageInfo, len(uids))
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

func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) (err error) {
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
			s.trainFlags(v.name, store.FlagsAdd, []string{`\Seen`}, res)
			byUID := map[uint32][]string{}
			for _, m := range res {
				byUID[m.UID] = m.Flags
			}
			for _, m := range msgs {
				if m == nil {
					continue
				}
				if f, ok := byUID[m.UID]; ok {
					m.Flags = f
					changed[m.UID] = true
				}
			}
		}
	}
	// The library flushes after every response; gather them into full
	// TLS records instead of one record and one write(2) per message.
	s.lc.cork()
	defer func() {
		if uerr := s.lc.uncork(); err == nil {
			err = uerr
		}
	}()
	var envs []mailheader.Summary
	var batch []uint32
	for i, m := range msgs {
		if m == nil {
			continue // expunged by another session; the client hears of it later
		}
		if options.Envelope && len(envs) == 0 {
			// Envelopes come from the store's cache, a batch at a time.
			batch = batch[:0]
			for _, m := range msgs[i:] {
				if m != nil {
					batch = append(batch, m.UID)
					if len(batch) == fetchBatch {
						break
					}
				}
			}
			if envs, err = s.srv.st.Summaries(s.ctx(), s.account, v.name, batch); err != nil {
				return s.storeError(err, imap.ResponseCodeNonExistent)
			}
		}
		var env *mailheader.Summary
		if options.Envelope {
			env, envs = &envs[0], envs[1:]
		}
		rw := w.CreateMessage(uint32(idx[i] + 1))
		if err := s.fetchOne(rw, v, m, env, options, changed[m.UID]); err != nil {
			rw.Close()
			return err
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// fetchBatch is how many envelopes Fetch asks the store for at a time.
const fetchBatch = 1024

func setsSeen(options *imap.FetchOptions) bool {
	for _, bs := range options.BodySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

func (s *session) fetchOne(rw *imapserver.FetchResponseWriter, v *view, m *store.MessageInfo, env *mailheader.Summary, options *imap.FetchOptions, flagsChanged bool) error {
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
		r, _, err := s.srv.st.OpenMessage(s.ctx(), s.account, v.name, m.UID)
		return r, err
	}
	if env != nil {
		rw.WriteEnvelope(toIMAPEnvelope(env))
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

// toIMAPEnvelope converts an envelope, with one allocation for all its
// addresses. An empty list stays nil: the library writes From for a
// missing Sender or Reply-To.
func toIMAPEnvelope(e *mailheader.Summary) *imap.Envelope {
	addrs := make([]imap.Address, 0, len(e.From)+len(e.Sender)+len(e.ReplyTo)+len(e.To)+len(e.Cc)+len(e.Bcc))
	list := func(l []mailheader.Address) []imap.Address {
		if len(l) == 0 {
			return nil
		}
		start := len(addrs)
		for _, a := range l {
			addrs = append(addrs, imap.Address(a))
		}
		return addrs[start:len(addrs):len(addrs)]
	}
	return &imap.Envelope{
		Date:      e.Date,
		Subject:   e.Subject,
		From:      list(e.From),
		Sender:    list(e.Sender),
		ReplyTo:   list(e.ReplyTo),
		To:        list(e.To),
		Cc:        list(e.Cc),
		Bcc:       list(e.Bcc),
		InReplyTo: e.InReplyTo,
		MessageID: e.MessageID,
	}
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
func (s *session) writeSection(rw *imapserver.FetchResponseWriter, open func() (io.ReadCloser, error), m *store.MessageInfo, bs *imap.FetchItemBodySection) error {
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
	var pad []byte
	if k < n {
		pad = bytes.Repeat([]byte{' '}, 4096)
	}
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
