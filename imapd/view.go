package imapd

import (
	"context"
	"errors"
	"slices"
	"sort"

	"yubin/internal/imapwire"
	"yubin/store"
)

// view is a session's picture of its selected mailbox: the UIDs the client
// knows, in sequence-number order. It follows the store's change feed and
// tells the client about changes when the protocol allows (RFC 3501 7):
// EXISTS for new mail, FETCH FLAGS for flag changes, EXPUNGE only when the
// command in progress allows it.
type view struct {
	st          store.Mail
	account     string
	name        string
	uidValidity uint32
	readOnly    bool

	uids    []uint32 // seq i+1 is uids[i]; ascending
	uidNext uint32   // every UID below it is known (or was expunged)
	sub     *store.Subscription
	pending []store.Event
	gone    bool // the mailbox was deleted or recreated
	// keywords are the keywords the client was told the mailbox uses
	// (FLAGS); a new one makes the server send FLAGS again.
	keywords map[string]bool
	// recent are the ranges of UIDs [lo, hi) that are \Recent in this
	// session: those it claimed (SELECT), or from the mailbox's
	// FirstRecent on (EXAMINE, which claims nothing).
	recent [][2]uint32
	// saved is the saved search result, "$" (SEARCHRES, RFC 5182): UIDs,
	// ascending; expunged ones drop out as they are resolved.
	saved []uint32
	// told is the latest mod-sequence of each message whose flags the
	// client was told (FETCH, STORE, updates): an event older than it is
	// stale and never sent, so flags and MODSEQ never go back.
	told map[uint32]uint64
	// updates are the searches kept up to date (context.go).
	updates *searchUpdates
}

// tell records that the client was told a message's flags as of modseq.
func (v *view) tell(uid uint32, modseq uint64) {
	if v.told == nil {
		v.told = map[uint32]uint64{}
	}
	if modseq > v.told[uid] {
		v.told[uid] = modseq
	}
}

// stale reports whether a flag change of modseq is older than what the
// client was told about uid.
func (v *view) stale(uid uint32, modseq uint64) bool {
	return modseq != 0 && modseq <= v.told[uid]
}

// addRecent makes UIDs lo up to hi (exclusive) recent in the session.
func (v *view) addRecent(lo, hi uint32) {
	if lo < hi {
		v.recent = append(v.recent, [2]uint32{lo, hi})
	}
}

// isRecent reports whether uid is \Recent in this session.
func (v *view) isRecent(uid uint32) bool {
	for _, r := range v.recent {
		if r[0] <= uid && uid < r[1] {
			return true
		}
	}
	return false
}

// recentCount is how many of the session's messages are \Recent.
func (v *view) recentCount() uint32 {
	if len(v.recent) == 0 {
		return 0
	}
	n := uint32(0)
	for _, uid := range v.uids {
		if v.isRecent(uid) {
			n++
		}
	}
	return n
}

// feedBuffer is how many events a selected session may fall behind before
// it re-reads its mailbox.
const feedBuffer = 64

// updateWriter is what a view writes updates with (the connection).
type updateWriter interface {
	WriteExpunge(seqNum, uid uint32) error
	WriteNumMessages(n uint32) error
	WriteMessageFlags(seqNum, uid uint32, flags []string, modseq uint64) error
}

// openView subscribes first and reads the mailbox second, so no change
// falls between the two; changes already in the snapshot are skipped.
func openView(ctx context.Context, st store.Mail, account, name string, readOnly bool) (*view, []store.MessageInfo, store.Mailbox, error) {
	sub := st.Subscribe(ctx, account, feedBuffer)
	msgs, meta, err := st.Messages(ctx, account, name)
	if err != nil {
		sub.Close()
		return nil, nil, meta, err
	}
	v := &view{st: st, account: account, name: meta.Name, uidValidity: meta.UIDValidity, readOnly: readOnly,
		uidNext: meta.UIDNext, sub: sub, uids: make([]uint32, len(msgs))}
	for i, m := range msgs {
		v.uids[i] = m.UID
	}
	return v, msgs, meta, nil
}

func (v *view) close() {
	v.sub.Close()
}

// seqOf returns the sequence number of uid, 0 if the client does not know it.
func (v *view) seqOf(uid uint32) uint32 {
	i, ok := slices.BinarySearch(v.uids, uid)
	if !ok {
		return 0
	}
	return uint32(i + 1)
}

// drain moves what the feed has into pending, without blocking.
func (v *view) drain() {
	for {
		select {
		case ev, ok := <-v.sub.C:
			if !ok {
				return
			}
			if ev.Mailbox == v.name && ev.UIDValidity == v.uidValidity {
				v.pending = append(v.pending, ev)
			}
		default:
			return
		}
	}
}

// dropOwnFlags forgets the flag events caused by this session's own STORE
// (or implicit \Seen), which it has answered already, as long as nothing
// changed the flags again since.
func (v *view) dropOwnFlags(msgs []store.MessageInfo) {
	v.drain()
	own := make(map[uint32][]string, len(msgs))
	for _, m := range msgs {
		own[m.UID] = m.Flags
		v.updates.touch(m.UID)
	}
	out := v.pending[:0]
	for _, ev := range v.pending {
		if f, ok := own[ev.UID]; ok && ev.Kind == store.EventFlags && slices.Equal(f, ev.Flags) {
			continue
		}
		out = append(out, ev)
	}
	v.pending = out
}

// sync tells the client what changed. Without allowExpunge it stops at the
// first expunge, which stays pending for a later command.
func (v *view) sync(ctx context.Context, w updateWriter, allowExpunge bool) error {
	v.drain()
	if v.sub.Overflowed() {
		if err := v.resync(ctx); err != nil {
			return err
		}
	}
	exists := false
	flush := func() error {
		if !exists {
			return nil
		}
		exists = false
		return w.WriteNumMessages(uint32(len(v.uids)))
	}
	for len(v.pending) > 0 {
		ev := v.pending[0]
		switch ev.Kind {
		case store.EventNew:
			if ev.UID >= v.uidNext {
				v.uids = append(v.uids, ev.UID)
				v.uidNext = ev.UID + 1
				exists = true
			}
		case store.EventFlags:
			if seq := v.seqOf(ev.UID); seq != 0 && !v.stale(ev.UID, ev.ModSeq) {
				if err := flush(); err != nil {
					return err
				}
				if err := w.WriteMessageFlags(seq, ev.UID, ev.Flags, ev.ModSeq); err != nil {
					return err
				}
			}
		case store.EventExpunge:
			if seq := v.seqOf(ev.UID); seq != 0 {
				if !allowExpunge {
					return flush()
				}
				if err := flush(); err != nil {
					return err
				}
				v.remove(seq)
				if err := w.WriteExpunge(seq, ev.UID); err != nil {
					return err
				}
			}
		}
		v.pending = v.pending[1:]
	}
	if len(v.pending) == 0 {
		v.pending = nil // let the backing array go
	}
	return flush()
}

func (v *view) remove(seq uint32) {
	delete(v.told, v.uids[seq-1])
	v.uids = slices.Delete(v.uids, int(seq-1), int(seq))
}

// resync re-reads the mailbox after the feed dropped events, and turns
// the difference into events: expunges, new messages, and every flag (we
// cannot know which changed).
func (v *view) resync(ctx context.Context) error {
	msgs, meta, err := v.st.Messages(ctx, v.account, v.name)
	if errors.Is(err, store.ErrNoSuchMailbox) || err == nil && meta.UIDValidity != v.uidValidity {
		msgs, err = nil, nil
		v.gone = true
	}
	if err != nil {
		return err
	}
	v.pending = v.pending[:0]
	have := make(map[uint32]bool, len(msgs))
	for _, m := range msgs {
		have[m.UID] = true
	}
	for _, uid := range v.uids {
		if !have[uid] {
			v.pending = append(v.pending, store.Event{Kind: store.EventExpunge, UID: uid})
		}
	}
	for _, m := range msgs {
		kind := store.EventFlags
		if m.UID >= v.uidNext {
			kind = store.EventNew
		}
		v.pending = append(v.pending, store.Event{Kind: kind, UID: m.UID, Flags: m.Flags})
	}
	return nil
}

// resolve turns a sequence set (uid: a UID set) into indexes of v.uids,
// ascending, without duplicates. Numbers that name no message are left
// out: a UID set may name UIDs that were expunged, and "*" in an empty
// mailbox names nothing.
func (v *view) resolve(set imapwire.NumSet, uid bool) ([]int, error) {
	var out []int
	n := len(v.uids)
	if n == 0 {
		return nil, nil
	}
	if set.Search {
		for _, uid := range v.saved {
			if i, ok := slices.BinarySearch(v.uids, uid); ok {
				out = append(out, i)
			}
		}
		return out, nil
	}
	if !uid {
		for _, b := range set.Bounds(uint32(n)) {
			for s := max(b[0], 1); s <= min(b[1], uint32(n)); s++ {
				out = append(out, int(s-1))
			}
		}
	} else {
		for _, b := range set.Bounds(v.uids[n-1]) {
			i, _ := slices.BinarySearch(v.uids, b[0])
			for ; i < n && v.uids[i] <= b[1]; i++ {
				out = append(out, i)
			}
		}
	}
	if len(out) > 1 {
		sort.Ints(out)
		out = slices.Compact(out)
	}
	return out, nil
}

// uidsAt returns the UIDs at the given indexes.
func (v *view) uidsAt(idx []int) []uint32 {
	out := make([]uint32, len(idx))
	for i, j := range idx {
		out[i] = v.uids[j]
	}
	return out
}
