package mailimport

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"yubin/internal/mailfiles"
)

// Files is a source of mail files: a Maildir with its Maildir++ folders,
// an mbox file, or a directory of mbox files (mailfiles.Tree).
type Files struct {
	Path    string
	folders []mailfiles.Folder
	boxes   []Mailbox
	// Skipped are the files of a directory of mbox files that are not
	// mail, with the reason.
	Skipped []string
}

// OpenFiles reads the tree at path and counts its messages, checking
// every one: a message that is not mail (it does not begin with a header
// field) is an error naming it, before anything is imported. max bounds
// what is read of one message (a larger one is counted, not kept).
func OpenFiles(path string, max int64) (*Files, error) {
	folders, skipped, err := mailfiles.Tree(path)
	if err != nil {
		return nil, err
	}
	f := &Files{Path: path, folders: folders, Skipped: skipped}
	byName := map[string]string{}
	for _, fd := range folders {
		name := MailboxName(strings.Split(fd.Name, "/"))
		if other, dup := byName[name]; dup {
			return nil, fmt.Errorf("%s and %s are both the mailbox %s", other, fd.Source.Path, name)
		}
		byName[name] = fd.Source.Path
		fd.Source.Max = int(max) + 1
		b := Mailbox{Name: name, From: fd.Source.Path}
		if !fd.Source.Empty() {
			err := fd.Source.Each(func(m mailfiles.Message) error {
				if _, pseudo := mailfiles.StripMboxMeta(m.Raw); pseudo && fd.Source.Kind == mailfiles.MBox {
					return nil // not mail: left out
				}
				b.Messages++
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		f.boxes = append(f.boxes, b)
	}
	return f, nil
}

// Mailboxes implements Source.
func (f *Files) Mailboxes(context.Context) ([]Mailbox, error) {
	return append([]Mailbox(nil), f.boxes...), nil
}

// Import implements Source: each message of the folder, with its flags
// and date, under a key of its text and the mailbox it goes to; mbox
// bookkeeping fields (Status, X-Status, X-Keywords, X-UID, X-IMAP,
// X-IMAPbase) are taken off, and the pseudo message some servers keep
// first in an mbox is left out.
func (f *Files) Import(ctx context.Context, i int, im *Importer) error {
	src := f.folders[i].Source
	if src.Empty() {
		return nil
	}
	errFull := errors.New("full")
	err := src.Each(func(m mailfiles.Message) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if im.Full() {
			return errFull
		}
		raw := m.Raw
		if src.Kind == mailfiles.MBox {
			var pseudo bool
			if raw, pseudo = mailfiles.StripMboxMeta(raw); pseudo {
				return nil // not mail (not counted either)
			}
		}
		if m.Size > im.MaxMessage() {
			im.TooBig(m.Where, m.Size)
			return nil
		}
		raw = CRLF(raw)
		return im.Add(ctx, Message{
			Key:   key("file", im.Mailbox().Name, string(raw)),
			Flags: m.Flags,
			Date:  m.Date,
			Size:  int64(len(raw)),
			Raw:   raw,
			Where: m.Where,
		})
	})
	if errors.Is(err, errFull) {
		return nil
	}
	return err
}

// Close implements Source.
func (f *Files) Close() error { return nil }
