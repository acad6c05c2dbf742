package queue

import (
	"bufio"
	"bytes"
	"context"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"

	"github.com/emersion/go-msgauth/dkim"

	"yubin/internal/dkimkey"
	"yubin/store"
)

// Signer returns the header fields (each ending in CRLF) to put at the top
// of an outbound message, or nothing.
type Signer interface {
	Sign(ctx context.Context, envelopeFrom string, msg []byte) ([]byte, error)
}

// keyStore is what signing reads: which domains are ours, and their keys.
type keyStore interface {
	store.Directory
	store.Settings
}

// DKIMSigner signs mail from local domains with the domain's Ed25519 and
// RSA keys (package dkimkey; generated on first use). The signing domain is
// the From: header's domain when it is one of ours (DMARC alignment), else
// the envelope sender's (a forward's SRS address). Mail from neither is
// left alone.
type DKIMSigner struct {
	st keyStore

	mu   sync.Mutex
	keys map[string][]dkimkey.Key
}

// NewDKIMSigner returns a signer over st's domains and keys.
func NewDKIMSigner(st keyStore) *DKIMSigner {
	return &DKIMSigner{st: st, keys: map[string][]dkimkey.Key{}}
}

// signedHeaders are the fields signed when present (RFC 6376 section
// 5.4.1); From is listed twice so that a second From cannot be added.
var signedHeaders = []string{
	"From", "From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "Content-ID", "Content-Description",
	"Resent-Date", "Resent-From", "Resent-To", "Resent-Cc", "Resent-Message-ID",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Post", "List-Owner", "List-Archive",
}

// Sign implements Signer.
func (s *DKIMSigner) Sign(ctx context.Context, envelopeFrom string, msg []byte) ([]byte, error) {
	domain := s.signingDomain(ctx, envelopeFrom, msg)
	if domain == "" {
		return nil, nil
	}
	keys, err := s.domainKeys(ctx, domain)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, k := range keys {
		sg, err := dkim.NewSigner(&dkim.SignOptions{
			Domain: domain, Selector: k.Selector, Signer: k.Signer,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed,
			BodyCanonicalization:   dkim.CanonicalizationRelaxed,
			HeaderKeys:             signedHeaders,
		})
		if err != nil {
			return nil, err
		}
		if _, err := sg.Write(msg); err != nil {
			sg.Close()
			return nil, err
		}
		if err := sg.Close(); err != nil {
			return nil, err
		}
		out = append(out, sg.Signature()...)
	}
	return out, nil
}

func (s *DKIMSigner) domainKeys(ctx context.Context, domain string) ([]dkimkey.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[domain]; ok {
		return k, nil
	}
	k, err := dkimkey.ForDomain(ctx, s.st, domain)
	if err != nil {
		return nil, err
	}
	s.keys[domain] = k
	return k, nil
}

func (s *DKIMSigner) signingDomain(ctx context.Context, envelopeFrom string, msg []byte) string {
	if d := domainOf(headerFrom(msg)); d != "" && s.st.IsLocalDomain(ctx, d) {
		return d
	}
	if d := domainOf(envelopeFrom); d != "" && s.st.IsLocalDomain(ctx, d) {
		return d
	}
	return ""
}

// headerFrom returns the address in the message's From: field, or "".
func headerFrom(msg []byte) string {
	end := bytes.Index(msg, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(msg)
	} else {
		end += 4
	}
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(msg[:end]))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return ""
	}
	list, err := mail.ParseAddressList(h.Get("From"))
	if err != nil || len(list) == 0 {
		return ""
	}
	return list[0].Address
}

func domainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(addr[at+1:])
}
