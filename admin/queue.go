package admin

import (
	"bytes"
	"context"

	"yubin/store"
)

// QueueEntry is one outbound queue entry: a message waiting for delivery
// to the recipients of one remote domain.
type QueueEntry = store.QueueEntry

// QueueDetail is what "queue show" prints: the entry and the message's
// header section.
type QueueDetail struct {
	QueueEntry
	Headers string `json:"headers"`
}

// Queue lists the outbound queue.
func (s *Service) Queue(ctx context.Context) ([]QueueEntry, error) {
	q, err := s.st.QueueEntries(ctx)
	if q == nil {
		q = []QueueEntry{}
	}
	return q, translate(err)
}

// QueueShow returns one entry with its message's headers.
func (s *Service) QueueShow(ctx context.Context, id string) (QueueDetail, error) {
	msg, e, err := s.st.ReadQueued(ctx, id)
	if err != nil {
		return QueueDetail{}, errorf(store.ErrNoSuchMessage, "no queue entry %s", id)
	}
	h := msg
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		h = msg[:i+2]
	}
	return QueueDetail{QueueEntry: e, Headers: string(h)}, nil
}

// QueueRetry makes the entries (all of them with all) due now and returns
// how many; a running server tries them at once.
func (s *Service) QueueRetry(ctx context.Context, ids []string, all bool) (int, error) {
	if err := checkQueueIDs(ids, all); err != nil {
		return 0, err
	}
	n, err := s.st.RetryQueued(ctx, ids)
	return n, translate(err)
}

// QueueDrop deletes the entries (all of them with all) without a bounce
// and returns how many.
func (s *Service) QueueDrop(ctx context.Context, ids []string, all bool) (int, error) {
	if err := checkQueueIDs(ids, all); err != nil {
		return 0, err
	}
	n, err := s.st.DropQueued(ctx, ids)
	return n, translate(err)
}

func checkQueueIDs(ids []string, all bool) error {
	if len(ids) == 0 && !all {
		return errorf(store.ErrInvalid, "give queue ids, or --all")
	}
	if len(ids) > 0 && all {
		return errorf(store.ErrInvalid, "give queue ids or --all, not both")
	}
	return nil
}
