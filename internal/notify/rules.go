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
	var out []string
	for _, a := range accts {
		if a.Role == store.RoleAdmin {
			out = append(out, a.Address)
		}
	}
	return out
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
