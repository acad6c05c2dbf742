package server

import (
	"context"
	"log/slog"
	"time"

	"yubin/imapd"
	"yubin/internal/config"
	"yubin/internal/delivery"
	"yubin/internal/dnsbl"
	"yubin/internal/spam"
	"yubin/store"
)

// spamStage is the spam filter of mail from port 25.
func spamStage(cfg config.Config, st store.Store, bl *dnsbl.Checker, log *slog.Logger) delivery.Stage {
	return &delivery.SpamStage{
		Store:      st,
		Blocklists: bl,
		Quarantine: store.QuarantineLimit{Messages: cfg.Spam.QuarantineMaxMessages, Bytes: cfg.Spam.QuarantineMaxSize},
		Log:        log,
	}
}

// spamUpkeepInterval is how often held mail past its time and old tokens
// are deleted.
const spamUpkeepInterval = time.Hour

// spamUpkeep deletes, at start and then every spamUpkeepInterval until
// ctx ends, the quarantine entries older than store.QuarantineRetention
// and the spam model tokens no training has seen for spam.token_max_age.
func spamUpkeep(ctx context.Context, cfg config.Config, st store.Store, log *slog.Logger) {
	t := time.NewTicker(spamUpkeepInterval)
	defer t.Stop()
	for {
		now := time.Now()
		if n, err := st.PruneQuarantine(ctx, now.Add(-store.QuarantineRetention)); err != nil {
			log.Error("pruning the quarantine", "err", err)
		} else if n > 0 {
			log.Info("quarantine: deleted held mail past its time", "messages", n)
		}
		if n, err := st.PruneSpamModels(ctx, now.Add(-cfg.Spam.TokenMaxAge.Duration)); err != nil {
			log.Error("pruning spam models", "err", err)
		} else if n > 0 {
			log.Info("spam models: dropped tokens not seen for a long time", "tokens", n, "max_age", cfg.Spam.TokenMaxAge.Duration)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// trainHook queues the trainings IMAP commands ask for (nil when the
// filter is off).
func trainHook(cfg config.Config, t *spam.Trainer) func(imapd.Training) {
	if !cfg.Spam.Enabled {
		return nil
	}
	return func(tr imapd.Training) {
		class := store.Ham
		if tr.Spam {
			class = store.Spam
		}
		t.Enqueue(tr.Account, tr.Mailbox, tr.UIDs, class)
	}
}
