package delivery

import (
	"context"
	"log/slog"

	"yubin/internal/notify"
)

// QuotaStage sends the quota warning (90 % by default) to each
// local recipient whose usage this delivery made cross it — once per
// crossing. It acts after the message is committed.
type QuotaStage struct {
	Notifier *notify.Notifier
	Log      *slog.Logger // may be nil
}

// Name implements Stage.
func (q *QuotaStage) Name() string { return "quota-warning" }

// Process implements Stage.
func (q *QuotaStage) Process(ctx context.Context, m *Message) error {
	m.AfterCommit(func(ctx context.Context) {
		for _, r := range m.Local {
			if r.Drop {
				continue
			}
			if err := q.Notifier.CheckQuota(ctx, r.Account); err != nil && q.Log != nil {
				q.Log.Error("quota warning", "account", r.Account, "err", err)
			}
		}
	})
	return nil
}
