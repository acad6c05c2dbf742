// Package mailgen makes realistic mail for benchmarks and tests of the spam
// filter: the header a message from the Internet arrives with (Received,
// DKIM-Signature, List-Unsubscribe on bulk mail), multipart/alternative with
// a quoted-printable text/plain part and the same text as HTML with links,
// in prose drawn from a vocabulary shared by spam and ham with words of
// their own for each, so that a model trained on a few hundred of them has
// thousands of tokens and finds clues in a new one. The same seed gives
// the same messages.
package mailgen

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"
)

// Gen makes messages (not safe for concurrent use).
type Gen struct {
	rng  *rand.Rand
	zipf *rand.Zipf
}

// New returns a generator; the same seed gives the same messages.
func New(seed uint64) *Gen {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	return &Gen{rng: rng, zipf: rand.NewZipf(rng, 1.1, 2, uint64(len(genCommon)-1))}
}

var (
	genCommon = strings.Fields(`the of and to a in is it you that he was for on are with as I his they be at one have this
from or had by hot word but what some we can out other were all there when up use your how said an each she which do
their time if will way about many then them write would like so these her long make thing see him two has look more day
could go come did number sound no most people my over know water than call first who may down side been now find any new
work part take get place made live where after back little only round man year came show every good me give our under
name very through just form sentence great think say help low line differ turn cause much mean before move right boy old
too same tell does set three want air well also play small end put home read hand port large spell add even land here
must big high such follow act why ask men change went light kind off need house picture try us again animal point mother
world near build self earth father head stand own page should country found answer school grow study still learn plant
cover food sun four between state keep eye never last let thought city tree cross farm hard start might story saw far sea
draw left late run don't while press close night real life few north open seem together next white children begin got walk
example ease paper group always music those both mark often letter until mile river car feet care second book carry took
science eat room friend began idea fish mountain stop once base hear horse cut sure watch color face wood main enough plain
girl usual young ready above ever red list though feel talk bird soon body dog family direct pose leave song measure door
product black short numeral class wind question happen complete ship area half rock order fire south problem piece told
knew pass since top whole king space heard best hour better true during hundred five remember step early hold west ground
interest reach fast verb sing listen six table travel less morning ten simple several vowel toward war lay against pattern
slow center love person money serve appear road map rain rule govern pull cold notice voice unit power town fine certain
fly fall lead cry dark machine note wait plan figure star box noun field rest correct able pound done beauty drive stood
contain front teach week final gave green quick develop ocean warm free minute strong special mind behind clear tail
produce fact street inch multiply nothing course stay wheel full force blue object decide surface deep moon island foot
system busy test record boat common gold possible plane stead dry wonder laugh thousand ago ran check game shape equate
miss brought heat snow tire bring yes distant fill east paint language among`)
	genSpam = strings.Fields(`offer free discount cheap pills viagra casino winner prize claim click unsubscribe limited
guaranteed credit loan mortgage refinance bonus exclusive deal save cash investment profit risk-free million dollars act
now order today lowest price pharmacy weight loss miracle secret income opportunity urgent congratulations selected
winning jackpot bitcoin crypto wealth trial subscription satisfaction rolex replica enlargement dating singles meet hot
approved pre-approved debt consolidation insurance quote rates lender bargain clearance sale 100% amazing incredible
unbelievable fantastic earn extra home-based marketing leads bulk email stock alert penny shares`)
	genHam = strings.Fields(`meeting agenda project review schedule report budget deadline draft proposal attached
comments thanks regards colleague team quarterly minutes conference call tomorrow thursday friday monday document
revision feedback discussion release milestone sprint roadmap ticket issue patch build deploy server config database
query migration backup invoice contract vendor customer support request lunch office travel itinerary hotel flight
presentation slides spreadsheet analysis results summary notes follow-up question clarification approval sign-off
version branch merge commit repository kernel package mailing list archive thread reply hiking weekend family birthday`)
	genNames = strings.Fields(`Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert
Sybil Trent Victor Walter Yuki Zoe Hiroshi Akiko Pierre Ines`)
)

// domain returns a sender domain: one of a few dozen per class.
func (g *Gen) domain(spam bool) string {
	if spam {
		return fmt.Sprintf("%s-%d.test", []string{"promo", "deals", "offers", "bestprice", "winbig"}[g.rng.IntN(5)], g.rng.IntN(10))
	}
	return fmt.Sprintf("%s%d.test", []string{"partner", "lists", "corp", "univ", "friends"}[g.rng.IntN(5)], g.rng.IntN(6))
}

// word draws a word: mostly common, one in four from the class's own.
func (g *Gen) word(spam bool) string {
	if g.rng.IntN(4) == 0 {
		own := genHam
		if spam {
			own = genSpam
		}
		return own[g.rng.IntN(len(own))]
	}
	return genCommon[g.zipf.Uint64()]
}

// sentence writes n words with a capital, punctuation and now and then
// a number, a price or a non-ASCII word.
func (g *Gen) sentence(b *strings.Builder, spam bool, n int) {
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		w := g.word(spam)
		switch r := g.rng.IntN(40); {
		case i == 0:
			w = strings.ToUpper(w[:1]) + w[1:]
		case r == 0:
			w = fmt.Sprintf("$%d.%02d", g.rng.IntN(500), g.rng.IntN(100))
		case r == 1:
			w = []string{"café", "naïve", "résumé", "Zürich", "señor", "東京", "ありがとう"}[g.rng.IntN(7)]
		case r == 2:
			w = fmt.Sprint(g.rng.IntN(10000))
		case r == 3:
			w += ","
		}
		b.WriteString(w)
	}
	b.WriteString([]string{".", ".", ".", "?", "!"}[g.rng.IntN(5)])
}

// IntN returns a number in [0, n) from the generator's source.
func (g *Gen) IntN(n int) int { return g.rng.IntN(n) }

// Message returns one message (spam or ham) of about size bytes.
func (g *Gen) Message(spam bool, size int) []byte {
	dom := g.domain(spam)
	from := genNames[g.rng.IntN(len(genNames))]
	date := time.Date(2024, 3, 1+g.rng.IntN(28), g.rng.IntN(24), g.rng.IntN(60), 0, 0, time.UTC).Format(time.RFC1123Z)
	var subj strings.Builder
	g.sentence(&subj, spam, 4+g.rng.IntN(5))
	var h bytes.Buffer
	fmt.Fprintf(&h, "Received: from mail%d.%s (mail%d.%s [198.51.%d.%d])\r\n\tby mx.example.com with ESMTPS id %016x\r\n\tfor <bob@example.com>; %s\r\n",
		g.rng.IntN(4), dom, g.rng.IntN(4), dom, g.rng.IntN(256), g.rng.IntN(256), g.rng.Uint64(), date)
	fmt.Fprintf(&h, "Received: from [10.%d.%d.%d] by mail.%s with ESMTPSA id %08x; %s\r\n",
		g.rng.IntN(256), g.rng.IntN(256), g.rng.IntN(256), dom, g.rng.Uint32(), date)
	sig := make([]byte, 256)
	for i := range sig {
		sig[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[g.rng.IntN(64)]
	}
	fmt.Fprintf(&h, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=s1;\r\n\th=from:to:subject:date:message-id; bh=%s;\r\n\tb=%s\r\n\t%s\r\n",
		dom, sig[:44], sig[44:120], sig[120:])
	fmt.Fprintf(&h, "From: %s <%s@%s>\r\nTo: Bob <bob@example.com>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%016x@%s>\r\nMIME-Version: 1.0\r\n",
		from, strings.ToLower(from), dom, mime.QEncoding.Encode("utf-8", subj.String()), date, g.rng.Uint64(), dom)
	if spam || g.rng.IntN(3) == 0 {
		fmt.Fprintf(&h, "List-Unsubscribe: <https://%s/unsubscribe?u=%x>\r\nPrecedence: bulk\r\n", dom, g.rng.Uint64())
	}
	boundary := fmt.Sprintf("=_b%x", g.rng.Uint32())
	fmt.Fprintf(&h, "X-Mailer: %s\r\nContent-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n",
		[]string{"Mailer 4.2", "Thunderbird 115.8", "Outlook 16.0", "BulkSend 2"}[g.rng.IntN(4)], boundary)

	// The text: paragraphs until the message (both parts, encoded) is
	// about size.
	var text, html strings.Builder
	html.WriteString("<html><head><style>p { margin: 0 }</style></head><body>\r\n")
	for h.Len()+text.Len()*23/10 < size {
		var p strings.Builder
		for range 2 + g.rng.IntN(4) {
			if p.Len() > 0 {
				p.WriteByte(' ')
			}
			g.sentence(&p, spam, 6+g.rng.IntN(14))
		}
		url := fmt.Sprintf("https://www.%s/%s/%d", dom, g.word(spam), g.rng.IntN(1000))
		text.WriteString(p.String() + "\r\n" + url + "\r\n\r\n")
		fmt.Fprintf(&html, "<p>%s <a href=\"%s\">%s</a></p>\r\n", p.String(), url, g.word(spam))
		if g.rng.IntN(4) == 0 {
			fmt.Fprintf(&html, "<img src=\"https://img.%s/%x.png\" width=\"600\">\r\n", dom, g.rng.Uint32())
		}
	}
	html.WriteString("</body></html>\r\n")
	for _, part := range []struct{ ct, body string }{{"text/plain", text.String()}, {"text/html", html.String()}} {
		fmt.Fprintf(&h, "--%s\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", boundary, part.ct)
		qp := quotedprintable.NewWriter(&h)
		qp.Write([]byte(part.body))
		qp.Close()
		h.WriteString("\r\n")
	}
	fmt.Fprintf(&h, "--%s--\r\n", boundary)
	return h.Bytes()
}
