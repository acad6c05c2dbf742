package notify

import (
	"bytes"
	"context"
	"fmt"

	"yubin/store"
)

// admins returns the admin accounts of domain (a parent domain).
func (n *Notifier) admins(ctx context.Context, domain string) []string {
	accts, err := n.st.Accounts(ctx, domain)
	if err != nil {
		return nil
	}
	return store.Admins(accts)
}

// WarnInbound warns the local recipient accounts of a stopped inbound
// message, and the admins of their domains.
func (n *Notifier) WarnInbound(ctx context.Context, accounts []string, ev Event) ([]string, error) {
	to := append([]string(nil), accounts...)
	for _, a := range accounts {
		to = append(to, n.admins(ctx, domainOf(a))...)
	}
	return n.Send(ctx, to, ev)
}

// WarnOutbound warns about a refused submission: the sending account, every
// recipient on the sender's own domain (parent or children), and the
// domain's admins. Recipients on other domains — ours or not — get nothing.
func (n *Notifier) WarnOutbound(ctx context.Context, sender string, recipients []string, ev Event) ([]string, error) {
	acct, ok := n.Allowed(ctx, sender)
	if !ok {
		return nil, nil
	}
	dom := domainOf(acct)
	to := []string{acct}
	for _, r := range recipients {
		if ra, ok := n.Allowed(ctx, r); ok && domainOf(ra) == dom {
			to = append(to, ra)
		}
	}
	to = append(to, n.admins(ctx, dom)...)
	return n.Send(ctx, to, ev)
}

// WarnRateLimited warns the admins of account's domain that the account
// reached its hourly sending limit (a stolen password is the usual
// reason). The account itself is not told, unless it is an admin.
func (n *Notifier) WarnRateLimited(ctx context.Context, account string, rate Rate) ([]string, error) {
	acct, ok := n.Allowed(ctx, account)
	if !ok {
		return nil, nil
	}
	rate.Account = acct
	return n.Send(ctx, n.admins(ctx, domainOf(acct)), Event{Kind: RateLimited, Sender: acct, Rate: rate})
}

func writeRate(w *bytes.Buffer, r Rate, lang string) {
	limit, limitJA := "no limit", "上限なし"
	switch {
	case r.MaxMessages > 0 && r.MaxRecipients > 0:
		limit = fmt.Sprintf("%d messages and %d recipients per hour", r.MaxMessages, r.MaxRecipients)
		limitJA = fmt.Sprintf("1時間あたり %d 通・宛先 %d 件", r.MaxMessages, r.MaxRecipients)
	case r.MaxMessages > 0:
		limit, limitJA = fmt.Sprintf("%d messages per hour", r.MaxMessages), fmt.Sprintf("1時間あたり %d 通", r.MaxMessages)
	case r.MaxRecipients > 0:
		limit, limitJA = fmt.Sprintf("%d recipients per hour", r.MaxRecipients), fmt.Sprintf("1時間あたり宛先 %d 件", r.MaxRecipients)
	}
	if lang != "ja" {
		fmt.Fprintf(w, "==== Yubin sending limit ====\n\n")
		fmt.Fprintf(w, "The account %s has reached its sending limit (%s):\n", r.Account, limit)
		fmt.Fprintf(w, "it submitted %d messages to %d recipients in the last hour.\n\n", r.Messages, r.Recipients)
		fmt.Fprintf(w, "More mail from it is refused with \"451 4.7.0\" (the mail program tries again later)\n")
		fmt.Fprintf(w, "until its count for the last hour is below the limit again.\n\n")
		fmt.Fprintf(w, "If its user did not send this much mail, its password may have been stolen:\n")
		fmt.Fprintf(w, "change it (yubin account passwd %s).\n", r.Account)
		fmt.Fprintf(w, "This warning is sent at most once an hour for each account.\n")
	}
	if lang == "" || lang == "both" {
		w.WriteString("\n")
	}
	if lang != "en" {
		fmt.Fprintf(w, "==== Yubin 送信制限 ====\n\n")
		fmt.Fprintf(w, "アカウント %s が送信数の上限 (%s) に達しました。\n", r.Account, limitJA)
		fmt.Fprintf(w, "直近1時間の送信: %d 通、宛先 %d 件\n\n", r.Messages, r.Recipients)
		fmt.Fprintf(w, "直近1時間の送信数が上限を下回るまで、このアカウントからの送信は「451 4.7.0」で一時的に拒否されます(メールソフトが後で再送します)。\n\n")
		fmt.Fprintf(w, "利用者がこれほど多くのメールを送信していない場合は、パスワードが盗まれた可能性があります。\n")
		fmt.Fprintf(w, "パスワードを変更してください (yubin account passwd %s)。\n", r.Account)
		fmt.Fprintf(w, "この警告は、アカウントごとに1時間に1回まで送信されます。\n")
	}
}

// DefaultQuotaPercent is the usage, in percent of the quota, that
// triggers the quota warning unless SetQuotaPercent says otherwise.
const DefaultQuotaPercent = 90

// SetQuotaPercent sets the quota warning threshold (1–100).
func (n *Notifier) SetQuotaPercent(p int) {
	if p >= 1 && p <= 100 {
		n.quotaPercent = p
	}
}

// CheckQuota sends the account a quota warning if its usage has just
// crossed the threshold (once per crossing).
func (n *Notifier) CheckQuota(ctx context.Context, account string) error {
	crossed, a, err := n.st.CheckQuotaWarning(ctx, account, n.quotaPercent)
	if err != nil || !crossed {
		return err
	}
	_, err = n.Send(ctx, []string{a.Address}, Event{Kind: QuotaWarning, Used: a.Used, Quota: a.Quota})
	return err
}

func writeQuota(w *bytes.Buffer, ev Event, lang string) {
	pct := ev.Used * 100 / max(ev.Quota, 1)
	if lang != "ja" {
		fmt.Fprintf(w, "Your mailbox uses %d%% of its quota (%s of %s).\n", pct, human(ev.Used), human(ev.Quota))
		fmt.Fprintf(w, "When it is full, new mail is refused. Please delete or download old mail.\n")
	}
	if lang == "" || lang == "both" {
		w.WriteString("\n")
	}
	if lang != "en" {
		fmt.Fprintf(w, "メールボックスの使用量が容量の %d%% (%s / %s) に達しました。\n", pct, human(ev.Used), human(ev.Quota))
		fmt.Fprintf(w, "容量を超えると新しいメールを受信できません。不要なメールを削除してください。\n")
	}
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
