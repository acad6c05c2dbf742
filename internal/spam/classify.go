package spam

import (
	"math"
	"slices"
	"strings"
	"sync"

	"yubin/store"
)

// Parameters of the classifier (Robinson's, as SpamBayes and bogofilter
// use them). Strength 0.3 and MinDeviation 0.15 (SpamBayes: 0.45 and
// 0.1) were chosen on the SpamAssassin corpus with scripts/spameval over
// 24 splits and confirmed with scripts/spam-corpus.sh on 6 (README,
// Accuracy): they catch a little more spam and misfile a little less ham
// than 1.0 and 0.1; smaller strengths catch more spam only by misfiling
// more ham.
const (
	// Strength (s) and Assumed (x) of Robinson's f(w): how much a token
	// seen n times is pulled towards x, the probability assumed for a
	// token never seen.
	Strength = 0.3
	Assumed  = 0.5
	// MinDeviation is how far from 0.5 a token's f(w) must be to count.
	MinDeviation = 0.15
	// MaxClues is how many of the most significant tokens are combined.
	MaxClues = 150
)

// Clue is one token that counted, with its probability f(w).
type Clue struct {
	Token string
	Prob  float64
}

// Classify combines the tokens' counts (counts[i] is the count of
// tokens[i]) in a model trained with totals into the probability that the
// message is spam, with Fisher's chi-square method (Robinson; SpamBayes'
// chi2_spamprob): near 0 ham, near 1 spam, near 0.5 unsure. It also
// returns the clues it used, most significant first. Without clues the
// result is 0.5.
func Classify(totals store.SpamTotals, tokens []string, counts []store.SpamCount) (float64, []Clue) {
	nspam, nham := float64(max(totals.Spam, 1)), float64(max(totals.Ham, 1))
	// Each clue with how far from 0.5 it is, worked out once, in a
	// buffer kept for the next message.
	buf := scoredPool.Get().(*[]scoredClue)
	defer func() {
		clear(*buf) // no tokens kept alive
		scoredPool.Put(buf)
	}()
	scoredClues := (*buf)[:0]
	for i, c := range counts {
		if c.Spam == 0 && c.Ham == 0 {
			continue
		}
		p := TokenProb(c, nspam, nham)
		dev := math.Abs(p - 0.5)
		if dev < MinDeviation {
			continue
		}
		scoredClues = append(scoredClues, scoredClue{dev, Clue{Token: tokens[i], Prob: p}})
	}
	// The most significant first; ties broken by token, so the result
	// does not depend on the order tokens came in.
	*buf = scoredClues
	slices.SortFunc(scoredClues, func(a, b scoredClue) int {
		switch {
		case a.dev > b.dev:
			return -1
		case a.dev < b.dev:
			return 1
		}
		return strings.Compare(a.Token, b.Token)
	})
	if len(scoredClues) > MaxClues {
		scoredClues = scoredClues[:MaxClues]
	}
	var clues []Clue
	if len(scoredClues) > 0 {
		clues = make([]Clue, len(scoredClues))
		for i, c := range scoredClues {
			clues[i] = c.Clue
		}
	}
	return Combine(clues), clues
}

// scoredClue is a clue with how far from 0.5 its probability is.
type scoredClue struct {
	dev float64
	Clue
}

var scoredPool = sync.Pool{New: func() any { return new([]scoredClue) }}

// TokenProb is Robinson's f(w) for a token counted c in a model of nspam
// spam and nham ham messages.
func TokenProb(c store.SpamCount, nspam, nham float64) float64 {
	n := float64(c.Spam) + float64(c.Ham)
	if n == 0 {
		return Assumed
	}
	spamRatio := math.Min(float64(c.Spam)/nspam, 1)
	hamRatio := math.Min(float64(c.Ham)/nham, 1)
	p := spamRatio / (spamRatio + hamRatio)
	return (Strength*Assumed + n*p) / (Strength + n)
}

// Combine is Fisher's combining of the clues' probabilities:
// (1 + S - H) / 2, where S and H are how unlikely the clues are if they
// were random as to spam and as to ham.
func Combine(clues []Clue) float64 {
	if len(clues) == 0 {
		return 0.5
	}
	var lnSpam, lnHam float64
	for _, c := range clues {
		p := math.Min(math.Max(c.Prob, 1e-6), 1-1e-6)
		lnSpam += math.Log(1 - p)
		lnHam += math.Log(p)
	}
	n := 2 * len(clues)
	s := 1 - chi2Q(-2*lnSpam, n)
	h := 1 - chi2Q(-2*lnHam, n)
	return (1 + s - h) / 2
}

// chi2Q is the probability that a chi-square variable with v (even)
// degrees of freedom is at least x2.
func chi2Q(x2 float64, v int) float64 {
	m := x2 / 2
	if m <= 0 {
		return 1
	}
	// The terms e^-m m^i / i! in logarithms: e^-m alone underflows for
	// m > 745 while later terms may not.
	logTerm := -m
	sum := math.Exp(logTerm)
	for i := 1; i < v/2; i++ {
		logTerm += math.Log(m / float64(i))
		sum += math.Exp(logTerm)
	}
	return math.Min(sum, 1)
}
