package imapd

import (
	"bytes"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"yubin/store"
)

// maxSearchBody bounds how much of one message a BODY or TEXT search reads.
const maxSearchBody = 8 << 20

func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	v := s.sel
	msgs, err := s.records(v, v.uids)
	if err != nil {
		return nil, s.storeError(err, imap.ResponseCodeNonExistent)
	}
	var maxUID uint32
	if n := len(v.uids); n > 0 {
		maxUID = v.uids[n-1]
	}
	sc := &searchCtx{s: s, v: v, n: uint32(len(v.uids)), maxUID: maxUID}
	data := &imap.SearchData{}
	var hits []uint32
	for i, m := range msgs {
		if m == nil {
			continue
		}
		sc.m, sc.seq = m, uint32(i+1)
		sc.hdr, sc.hdrRead, sc.ent = nil, false, nil
		if !sc.match(criteria) {
			continue
		}
		num := sc.seq
		if kind == imapserver.NumKindUID {
			num = m.UID
		}
		hits = append(hits, num)
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSet(hits)
	} else {
		data.All = seqSet(hits)
	}
	if len(hits) > 0 {
		data.Min, data.Max, data.Count = hits[0], hits[len(hits)-1], uint32(len(hits))
	}
	return data, nil
}

type searchCtx struct {
	s      *session
	v      *view
	n      uint32 // messages in the view: "*" for sequence numbers
	maxUID uint32

	m       *store.MessageInfo
	seq     uint32
	hdr     *textproto.Header
	hdrRead bool
	ent     []byte // the raw message, read for BODY/TEXT
}

func (c *searchCtx) header() *textproto.Header {
	if !c.hdrRead {
		c.hdrRead = true
		r, _, err := c.s.srv.st.OpenMessage(c.s.ctx(), c.s.account, c.v.name, c.m.UID)
		if err != nil {
			return nil
		}
		h := readHeader(r, c.m.HeaderSize)
		r.Close()
		c.hdr = &h
	}
	return c.hdr
}

func (c *searchCtx) raw() []byte {
	if c.ent == nil {
		r, _, err := c.s.srv.st.OpenMessage(c.s.ctx(), c.s.account, c.v.name, c.m.UID)
		if err != nil {
			c.ent = []byte{}
			return c.ent
		}
		c.ent, _ = io.ReadAll(io.LimitReader(r, maxSearchBody))
		r.Close()
	}
	return c.ent
}

func inSet(ranges [][2]uint32, num, star uint32) bool {
	for _, r := range ranges {
		a, b := r[0], r[1]
		if a == 0 {
			a = star
		}
		if b == 0 {
			b = star
		}
		if a > b {
			a, b = b, a
		}
		if num >= a && num <= b {
			return true
		}
	}
	return false
}

func (c *searchCtx) match(cr *imap.SearchCriteria) bool {
	for _, set := range cr.SeqNum {
		r := make([][2]uint32, len(set))
		for i, x := range set {
			r[i] = [2]uint32{x.Start, x.Stop}
		}
		if !inSet(r, c.seq, c.n) {
			return false
		}
	}
	for _, set := range cr.UID {
		r := make([][2]uint32, len(set))
		for i, x := range set {
			r[i] = [2]uint32{uint32(x.Start), uint32(x.Stop)}
		}
		if !inSet(r, c.m.UID, c.maxUID) {
			return false
		}
	}
	if !matchDate(c.m.Date, cr.Since, cr.Before) {
		return false
	}
	for _, f := range cr.Flag {
		if !hasFlagFold(c.m.Flags, string(f)) {
			return false
		}
	}
	for _, f := range cr.NotFlag {
		if hasFlagFold(c.m.Flags, string(f)) {
			return false
		}
	}
	if cr.Larger != 0 && c.m.Size <= cr.Larger {
		return false
	}
	if cr.Smaller != 0 && c.m.Size >= cr.Smaller {
		return false
	}
	if len(cr.Header) > 0 || !cr.SentSince.IsZero() || !cr.SentBefore.IsZero() {
		h := c.header()
		if h == nil {
			return false
		}
		mh := mail.Header{Header: gomessage.Header{Header: *h}}
		for _, f := range cr.Header {
			if !matchHeaderFields(mh.FieldsByKey(f.Key), f.Value) {
				return false
			}
		}
		if !cr.SentSince.IsZero() || !cr.SentBefore.IsZero() {
			t, err := mh.Date()
			if err != nil || t.IsZero() {
				t = c.m.Date // no usable Date: field; use the arrival time
			}
			if !matchDate(t, cr.SentSince, cr.SentBefore) {
				return false
			}
		}
	}
	for _, text := range cr.Text {
		if !c.matchText(text, true) {
			return false
		}
	}
	for _, body := range cr.Body {
		if !c.matchText(body, false) {
			return false
		}
	}
	for i := range cr.Not {
		if c.match(&cr.Not[i]) {
			return false
		}
	}
	for i := range cr.Or {
		if !c.match(&cr.Or[i][0]) && !c.match(&cr.Or[i][1]) {
			return false
		}
	}
	return true
}

func hasFlagFold(flags []string, f string) bool {
	for _, g := range flags {
		if strings.EqualFold(g, f) {
			return true
		}
	}
	return false
}

// matchDate compares dates only, as RFC 3501 wants.
func matchDate(t, since, before time.Time) bool {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && d.Before(since) {
		return false
	}
	if !before.IsZero() && !d.Before(before) {
		return false
	}
	return true
}

func matchHeaderFields(fields gomessage.HeaderFields, pattern string) bool {
	if pattern == "" {
		return fields.Len() > 0
	}
	pattern = strings.ToLower(pattern)
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		if strings.Contains(strings.ToLower(v), pattern) {
			return true
		}
	}
	return false
}

// matchText searches the decoded text parts of the message (and its
// header fields for TEXT).
func (c *searchCtx) matchText(pattern string, withHeader bool) bool {
	if pattern == "" {
		return true
	}
	e, err := gomessage.Read(bytes.NewReader(c.raw()))
	if e == nil {
		return false
	}
	_ = err // unknown charsets and encodings still give a readable entity
	return matchEntity(e, strings.ToLower(pattern), withHeader)
}

func matchEntity(e *gomessage.Entity, pattern string, withHeader bool) bool {
	if withHeader && matchHeaderFields(e.Header.Fields(), pattern) {
		return true
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err != nil {
				return false
			}
			if matchEntity(p, pattern, withHeader) {
				return true
			}
		}
	}
	t, _, _ := e.Header.ContentType()
	if t != "" && !strings.HasPrefix(t, "text/") && !strings.HasPrefix(t, "message/") {
		return false
	}
	b, _ := io.ReadAll(io.LimitReader(e.Body, maxSearchBody))
	return bytes.Contains(bytes.ToLower(b), []byte(pattern))
}
