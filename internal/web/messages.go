package web

import (
	"fmt"
	"maps"
)

// msg is one text in English and Japanese.
type msg struct{ en, ja string }

// catalogue is every text of the pages by key.
type catalogue map[string]msg

// newCatalogue merges the catalogue's files. A group of pages with
// messages of its own adds its file's function here.
func newCatalogue() catalogue {
	c := catalogue{}
	for _, part := range []func() catalogue{
		commonMessages,
		mailMessages,
		siteMessages,
	} {
		maps.Copy(c, part())
	}
	return c
}

// has reports whether key is in the catalogue.
func (c catalogue) has(key string) bool { _, ok := c[key]; return ok }

// text is key in lang, formatted with args; a missing key shows itself
// (TestCatalogue keeps that from happening).
func (c catalogue) text(lang, key string, args ...any) string {
	m, ok := c[key]
	if !ok {
		return key
	}
	s := m.en
	if lang == "ja" && m.ja != "" {
		s = m.ja
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// commonMessages: the layout, logging in, errors.
func commonMessages() catalogue {
	return catalogue{
		"app.mail":          {"Mail Manager", "メールマネージャー"},
		"nav.logout":        {"Log out", "ログアウト"},
		"login.title":       {"Log in", "ログイン"},
		"login.address":     {"Email address", "メールアドレス"},
		"login.password":    {"Password", "パスワード"},
		"login.submit":      {"Log in", "ログイン"},
		"login.missing":     {"Enter your email address and password.", "メールアドレスとパスワードを入力してください。"},
		"login.bad":         {"Wrong email address or password.", "メールアドレスまたはパスワードが違います。"},
		"login.locked":      {"Too many failed logins from your address. Try again later.", "ログインの失敗が多すぎるため、しばらくログインできません。時間をおいて再度お試しください。"},
		"login.unavailable": {"Logins cannot be checked right now. Try again in a moment.", "現在ログインを確認できません。しばらくしてから再度お試しください。"},
		"login.ended":       {"Your session has ended. Please log in again.", "セッションが終了しました。もう一度ログインしてください。"},
		"error.csrf":        {"This form has expired or did not come from this site. Reload the page and try again.", "このフォームは期限切れか、このサイトから送信されたものではありません。ページを再読み込みしてやり直してください。"},
		"error.denied":      {"You may not open this page.", "このページを開く権限がありません。"},
		"error.internal":    {"Something went wrong on the server. Try again later.", "サーバーでエラーが発生しました。時間をおいて再度お試しください。"},
		"error.noaccount":   {"No such account.", "そのアカウントはありません。"},
		"error.back":        {"Back to the start page", "トップページへ戻る"},
		"role.admin":        {"site admin", "サイト管理者"},
		"role.user":         {"user", "ユーザー"},
	}
}
