// Command spameval measures the spam tokenizer and classifier offline, in
// one process, on the SpamAssassin corpus and the splits scripts/spamcorpus
// uses: seconds instead of minutes, for trying a change to the tokenizer
// before confirming it with scripts/spam-corpus.sh (the real server, SMTP
// and IMAP). It is not the measure the README reports.
//
//	go run ./scripts/spameval -corpus ~/.cache/yubin/spam-assassin-0.2.3/package/data -seeds 1,2,3
package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"yubin/internal/spam"
	"yubin/store"
)

var (
	corpusDir = flag.String("corpus", "", "the corpus's data directory (with file_list.json)")
	seedsFlag = flag.String("seeds", "1,2,3", "split seeds")
	trainFrac = flag.Float64("train", 0.5, "part of each group trained")
	bound     = flag.Int("bound", store.MaxSpamTokens, "keep this many tokens, the most counted (the store's bound ages out the fewest counted)")
	show      = flag.Int("show", 0, "list this many misfiled ham per split")
	confident = flag.Float64("confident", spam.Confident, "leave out a message the model already scores within this of its class, as the server's trainer does (0: train everything)")
	order     = flag.String("order", "spam-first", "with -confident, the order training comes in: spam-first (the harness: spam moved to Junk, then ham read), ham-first, or mixed (the split's order)")
	showSpam  = flag.Int("show-spam", 0, "list this many missed spam per split")
	clueN     = flag.Int("clues", 0, "with -show or -show-spam, this many of each listed message's clues, most significant first")
	batchToks = flag.Int("batch-tokens", spam.TrainBatchTokens, "with -confident, judge a batch of this many tokens against the model before it, as the trainer does (0: one message at a time)")
)

type msg struct {
	name   string
	spam   bool
	tokens []string
}

func main() {
	flag.Parse()
	b, err := os.ReadFile(filepath.Join(*corpusDir, "file_list.json"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	all := make([]*msg, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			raw, err := os.ReadFile(filepath.Join(*corpusDir, filepath.FromSlash(name)))
			if err != nil {
				panic(err)
			}
			raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
			raw = bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))
			all[i] = &msg{name: name, spam: strings.HasPrefix(name, "spam"), tokens: spam.Tokenize(raw)}
		}()
	}
	wg.Wait()
	var totSpam, totHam, caught, misfiled int
	thresholds := []float64{0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99}
	sweep := make([][2]int, len(thresholds))
	for _, f := range strings.Split(*seedsFlag, ",") {
		seed, _ := strconv.ParseUint(f, 10, 64)
		train, test := split(all, seed, *trainFrac)
		counts := map[string]*store.SpamCount{}
		var tot store.SpamTotals
		switch *order {
		case "spam-first":
			slices.SortStableFunc(train, func(a, b *msg) int { return cmp.Compare(b.spam2(), a.spam2()) })
		case "ham-first":
			slices.SortStableFunc(train, func(a, b *msg) int { return cmp.Compare(a.spam2(), b.spam2()) })
		case "mixed":
			r := mrand.New(mrand.NewPCG(seed, 7))
			r.Shuffle(len(train), func(i, j int) { train[i], train[j] = train[j], train[i] })
		default:
			fmt.Fprintln(os.Stderr, "-order: spam-first, ham-first or mixed")
			os.Exit(2)
		}
		skipped := 0
		var batch []*msg
		batchN := 0
		apply := func() {
			for _, m := range batch {
				m.add(counts, &tot)
			}
			batch, batchN = batch[:0], 0
		}
		for _, m := range train {
			if *confident > 0 && tot.Spam >= spam.MinTraining && tot.Ham >= spam.MinTraining {
				cc := make([]store.SpamCount, len(m.tokens))
				for i, t := range m.tokens {
					if c := counts[t]; c != nil {
						cc[i] = *c
					}
				}
				p, _ := spam.Classify(tot, m.tokens, cc)
				if m.spam && p >= 1-*confident || !m.spam && p <= *confident {
					skipped++
					continue
				}
			}
			batch = append(batch, m)
			if batchN += len(m.tokens); batchN >= *batchToks || len(batch) >= spam.TrainBatch {
				apply()
			}
		}
		apply()
		if *bound > 0 && len(counts) > *bound {
			type kc struct {
				k string
				n uint32
			}
			var all []kc
			for k, c := range counts {
				all = append(all, kc{k, c.Spam + c.Ham})
			}
			slices.SortFunc(all, func(a, b kc) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.k, b.k)) })
			for _, x := range all[*bound:] {
				delete(counts, x.k)
			}
		}
		var ns, nh, cs, mh int
		var bad, missed []string
		var hist [11][2]int
		for _, m := range test {
			cc := make([]store.SpamCount, len(m.tokens))
			for i, t := range m.tokens {
				if c := counts[t]; c != nil {
					cc[i] = *c
				}
			}
			p, clues := spam.Classify(tot, m.tokens, cc)
			for _, sig := range spam.Reputation(m.tokens, cc) {
				p += sig.Weight // From taken as it is, as with the checks off
			}
			p = math.Round(math.Min(math.Max(p, 0), 1)*100) / 100
			k := 0
			if !m.spam {
				k = 1
			}
			hist[int(math.Min(p, 1)*10)][k]++
			for ti, th := range thresholds {
				if p >= th {
					sweep[ti][k]++
				}
			}
			if m.spam {
				ns++
				if p >= 0.5 {
					cs++
				} else {
					line := fmt.Sprintf("%.2f %s (%d clues)", p, m.name, len(clues))
					for _, c := range clues[:min(len(clues), *clueN)] {
						line += fmt.Sprintf(" %s=%.2f", c.Token, c.Prob)
					}
					missed = append(missed, line)
				}
			} else {
				nh++
				if p >= 0.5 {
					mh++
					line := fmt.Sprintf("%.2f %s (%d clues)", p, m.name, len(clues))
					for _, c := range clues[:min(len(clues), *clueN)] {
						line += fmt.Sprintf(" %s=%.2f", c.Token, c.Prob)
					}
					bad = append(bad, line)
				}
			}
		}
		fmt.Printf("seed %d: spam caught %d/%d (%.2f %%), ham misfiled %d/%d (%.2f %%), tokens %d, trained %d spam + %d ham (%d left out)\n", seed, cs, ns, 100*float64(cs)/float64(ns), mh, nh, 100*float64(mh)/float64(nh), len(counts), tot.Spam, tot.Ham, skipped)
		fmt.Printf("  score decile spam/ham: ")
		for i, h := range hist {
			fmt.Printf("%d:%d/%d ", i, h[0], h[1])
		}
		fmt.Println()
		for i, l := range bad {
			if i < *show {
				fmt.Println("   ", l)
			}
		}
		for i, l := range missed {
			if i < *showSpam {
				fmt.Println("    missed", l)
			}
		}
		totSpam += ns
		totHam += nh
		caught += cs
		misfiled += mh
	}
	for ti, th := range thresholds {
		fmt.Printf("  threshold %.2f: spam %.2f %%, ham %.2f %%\n", th, 100*float64(sweep[ti][0])/float64(totSpam), 100*float64(sweep[ti][1])/float64(totHam))
	}
	fmt.Printf("all: spam caught %.2f %%, ham misfiled %.2f %% (%d)\n", 100*float64(caught)/float64(totSpam), 100*float64(misfiled)/float64(totHam), misfiled)
}

func (m *msg) add(counts map[string]*store.SpamCount, tot *store.SpamTotals) {
	if m.spam {
		tot.Spam++
	} else {
		tot.Ham++
	}
	for _, t := range m.tokens {
		c := counts[t]
		if c == nil {
			c = &store.SpamCount{}
			counts[t] = c
		}
		if m.spam {
			c.Spam++
		} else {
			c.Ham++
		}
	}
}

func (m *msg) spam2() int {
	if m.spam {
		return 1
	}
	return 0
}

func split(all []*msg, seed uint64, frac float64) (train, test []*msg) {
	groups := map[string][]*msg{}
	var names []string
	for _, m := range all {
		g := m.name[:strings.IndexByte(m.name+"/", '/')]
		if groups[g] == nil {
			names = append(names, g)
		}
		groups[g] = append(groups[g], m)
	}
	slices.Sort(names)
	for _, g := range names {
		ms := slices.Clone(groups[g])
		slices.SortFunc(ms, func(a, b *msg) int { return cmp.Compare(a.name, b.name) })
		r := mrand.New(mrand.NewPCG(seed, 0x79756269_6e))
		for i := len(ms) - 1; i > 0; i-- {
			j := int(r.Uint64N(uint64(i + 1)))
			ms[i], ms[j] = ms[j], ms[i]
		}
		n := int(math.Round(frac * float64(len(ms))))
		train = append(train, ms[:n]...)
		test = append(test, ms[n:]...)
	}
	return train, test
}
