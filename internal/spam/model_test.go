package spam

import (
	"testing"

	"yubin/store"
)

func TestSpeaker(t *testing.T) {
	for _, c := range []struct {
		account, domain store.SpamTotals
		want            string
	}{
		{store.SpamTotals{}, store.SpamTotals{}, ModelNone},
		{store.SpamTotals{Spam: 50, Ham: 49}, store.SpamTotals{Spam: 10, Ham: 10}, ModelDomain},
		{store.SpamTotals{Spam: 50, Ham: 50}, store.SpamTotals{}, ModelAccount},
		{store.SpamTotals{Spam: 49, Ham: 500}, store.SpamTotals{Spam: 10, Ham: 9}, ModelNone},
	} {
		if got := Speaker(c.account, c.domain); got != c.want {
			t.Errorf("Speaker(%+v, %+v) = %s, want %s", c.account, c.domain, got, c.want)
		}
	}
}
