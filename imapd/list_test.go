package imapd

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"yubin/store"

	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
)

// listLines runs a command that must succeed and checks its untagged
// replies, in order.
func (r *raw) listLines(cmd string, want ...string) {
	r.T.Helper()
	if got := r.ok("%s", cmd); !slices.Equal(got, want) {
		r.T.Errorf("%s:\n got %q\nwant %q", cmd, got, want)
	}
}

// no runs a command that must fail with NO and the given response code.
func (r *raw) no(code, format string, args ...any) {
	r.T.Helper()
	if u, st := r.cmd(format, args...); !strings.HasPrefix(st, "NO ["+code+"]") {
		r.T.Errorf("%s: %s (untagged %q), want NO [%s]", fmt.Sprintf(format, args...), st, u, code)
	}
}

// Subscriptions are names (RFC 3501 6.3.6-7): CREATE does not subscribe,
// DELETE and RENAME leave them, UNSUBSCRIBE works on any name, SUBSCRIBE
// needs the mailbox; the default mailboxes start subscribed.
func TestSubscriptionsAreNames(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	r.listLines(`LSUB "" *`,
		`* LSUB () "/" INBOX`, `* LSUB (\Drafts) "/" "Drafts"`, `* LSUB (\Junk) "/" "Junk"`, `* LSUB (\Sent) "/" "Sent"`, `* LSUB (\Trash) "/" "Trash"`)
	r.ok("CREATE Work/2024")
	r.listLines(`LSUB "" Work*`)
	r.listLines(`LIST "" Work* RETURN (SUBSCRIBED)`, `* LIST (\HasChildren) "/" "Work"`, `* LIST (\HasNoChildren) "/" "Work/2024"`)
	r.ok("SUBSCRIBE Work/2024")
	r.ok("SUBSCRIBE Work/2024") // again
	r.listLines(`LIST "" Work* RETURN (SUBSCRIBED)`, `* LIST (\HasChildren) "/" "Work"`, `* LIST (\HasNoChildren \Subscribed) "/" "Work/2024"`)
	r.no("NONEXISTENT", "SUBSCRIBE Nope")
	r.ok("UNSUBSCRIBE Nope")

	// DELETE leaves the name subscribed: LIST (SUBSCRIBED) says it does
	// not exist (not \Noselect: RFC 5258 3), LSUB lists it as any other.
	r.ok("DELETE Work/2024")
	r.listLines(`LIST (SUBSCRIBED) "" Work*`, `* LIST (\NonExistent \Subscribed) "/" "Work/2024"`)
	r.listLines(`LSUB "" Work*`, `* LSUB () "/" "Work/2024"`)
	r.listLines(`LIST "" Work*`, `* LIST (\HasNoChildren) "/" "Work"`)
	r.no("NONEXISTENT", "SUBSCRIBE Work/2024")
	// Made again, the mailbox is subscribed.
	r.ok("CREATE Work/2024")
	r.listLines(`LIST "" Work/* RETURN (SUBSCRIBED)`, `* LIST (\HasNoChildren \Subscribed) "/" "Work/2024"`)

	// RENAME moves no subscription (as Dovecot).
	r.ok("RENAME Work Archive")
	r.listLines(`LIST (SUBSCRIBED) "" *`,
		`* LIST (\HasNoChildren \Subscribed) "/" INBOX`, `* LIST (\HasNoChildren \Subscribed \Drafts) "/" "Drafts"`, `* LIST (\HasNoChildren \Subscribed \Junk) "/" "Junk"`,
		`* LIST (\HasNoChildren \Subscribed \Sent) "/" "Sent"`, `* LIST (\HasNoChildren \Subscribed \Trash) "/" "Trash"`, `* LIST (\NonExistent \Subscribed) "/" "Work/2024"`)

	// UNSUBSCRIBE of a deleted name, with a trailing separator, and of
	// INBOX in any case.
	r.ok("UNSUBSCRIBE Work/2024/")
	r.ok("UNSUBSCRIBE inbox")
	r.listLines(`LSUB "" *`, `* LSUB (\Drafts) "/" "Drafts"`, `* LSUB (\Junk) "/" "Junk"`, `* LSUB (\Sent) "/" "Sent"`, `* LSUB (\Trash) "/" "Trash"`)
	r.ok("SUBSCRIBE InBox")
	r.listLines(`LSUB "" inbox`, `* LSUB () "/" INBOX`)
	r.listLines(`LIST "" Inbox`, `* LIST (\HasNoChildren) "/" INBOX`)

	// Another account's are its own.
	b := dialRaw(t, e.implicit, true)
	b.login("bob@example.com")
	b.listLines(`LSUB "" Work*`)
}

// LSUB with % lists a parent of subscribed names that is not subscribed
// itself as \Noselect; with * it lists the subscribed names only (RFC 3501
// 6.3.9, imaptest's subscribe script).
func TestLSUBParents(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	for _, n := range []string{"box/", "box/test", "box/test2/", "box/test3/", "box/test2/test", "box/test3/test3"} {
		r.ok("CREATE %s", n)
	}
	for _, n := range []string{"box/test", "box/test2/test", "box/test3/test3"} {
		r.ok("SUBSCRIBE %s", n)
	}
	r.listLines(`LSUB "" box/%`, `* LSUB () "/" "box/test"`, `* LSUB (\Noselect) "/" "box/test2"`, `* LSUB (\Noselect) "/" "box/test3"`)
	r.listLines(`LSUB "" *test`, `* LSUB () "/" "box/test"`, `* LSUB () "/" "box/test2/test"`)
	r.listLines(`LSUB "" %`, `* LSUB () "/" INBOX`, `* LSUB (\Drafts) "/" "Drafts"`, `* LSUB (\Junk) "/" "Junk"`, `* LSUB (\Sent) "/" "Sent"`,
		`* LSUB (\Trash) "/" "Trash"`, `* LSUB (\Noselect) "/" "box"`)
	r.listLines(`LSUB "" b%`, `* LSUB (\Noselect) "/" "box"`)
	r.listLines(`LSUB "box/" %`, `* LSUB () "/" "box/test"`, `* LSUB (\Noselect) "/" "box/test2"`, `* LSUB (\Noselect) "/" "box/test3"`)
	r.ok("UNSUBSCRIBE box/test2/test")
	r.listLines(`LSUB "" box/*`, `* LSUB () "/" "box/test"`, `* LSUB () "/" "box/test3/test3"`)
	r.ok("SUBSCRIBE box/test3")
	r.listLines(`LSUB "" box/%`, `* LSUB () "/" "box/test"`, `* LSUB () "/" "box/test3"`)
	// A parent that does not exist is listed all the same.
	r.ok("UNSUBSCRIBE box/test3")
	r.ok("DELETE box/test3/test3")
	r.ok("DELETE box/test3")
	r.listLines(`LSUB "" box/%`, `* LSUB () "/" "box/test"`, `* LSUB (\Noselect) "/" "box/test3"`)
}

// LIST-EXTENDED (RFC 5258) as imaptest's listext script checks it.
func TestListExtended(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	for _, n := range []string{"m/", "m/test1", "m/test2/", "m/test2/test1", "m/test3", "m/test4/test5", "m/test4/test52",
		"m/test6", "m/test7/test7", "m/test8/test8", "m/test8/test9"} {
		r.ok("CREATE %s", n)
	}
	for _, n := range []string{"m/test1", "m/test2/test1", "m/test6", "m/test7/test7", "m/test8/test8", "m/test8/test9"} {
		r.ok("SUBSCRIBE %s", n)
	}
	r.ok("DELETE m/test6")

	r.listLines(`LIST "" (m/*2 m/test3)`, `* LIST (\HasChildren) "/" "m/test2"`, `* LIST (\HasNoChildren) "/" "m/test3"`, `* LIST (\HasNoChildren) "/" "m/test4/test52"`)
	for _, c := range []string{`LIST (imaptest) "" ""`, `LIST (recursivematch) "" ""`, `LIST (recursivematch remote) "" ""`, `LIST "" "" return (imaptest)`} {
		if u, st := r.cmd("%s", c); !strings.HasPrefix(st, "BAD") || len(u) != 0 {
			t.Errorf("%s: %s %q, want BAD", c, st, u)
		}
	}
	r.listLines(`LIST (remote) "" m`, `* LIST (\HasChildren) "/" "m"`)
	r.listLines(`LIST (subscribed) "" m/*`,
		`* LIST (\HasNoChildren \Subscribed) "/" "m/test1"`,
		`* LIST (\HasNoChildren \Subscribed) "/" "m/test2/test1"`,
		`* LIST (\NonExistent \Subscribed) "/" "m/test6"`,
		`* LIST (\HasNoChildren \Subscribed) "/" "m/test7/test7"`,
		`* LIST (\HasNoChildren \Subscribed) "/" "m/test8/test8"`,
		`* LIST (\HasNoChildren \Subscribed) "/" "m/test8/test9"`)
	// A parent that is not subscribed but has a subscribed child that does
	// not match: CHILDINFO, not \Subscribed.
	r.listLines(`LIST (subscribed recursivematch) "" m/test2% return (children)`, `* LIST (\HasChildren) "/" "m/test2" (CHILDINFO ("SUBSCRIBED"))`)
	r.listLines(`LIST "" m/% return (children subscribed)`,
		`* LIST (\HasNoChildren \Subscribed) "/" "m/test1"`,
		`* LIST (\HasChildren) "/" "m/test2"`,
		`* LIST (\HasNoChildren) "/" "m/test3"`,
		`* LIST (\HasChildren) "/" "m/test4"`,
		`* LIST (\HasChildren) "/" "m/test7"`,
		`* LIST (\HasChildren) "/" "m/test8"`)
	// The child matches too: the parent's CHILDINFO would be redundant.
	r.listLines(`LIST (subscribed recursivematch) "" m*test7`, `* LIST (\HasNoChildren \Subscribed) "/" "m/test7/test7"`)
	// One child matches, one does not.
	r.listLines(`LIST (subscribed recursivematch) "" m*test8`,
		`* LIST (\HasChildren) "/" "m/test8" (CHILDINFO ("SUBSCRIBED"))`, `* LIST (\HasNoChildren \Subscribed) "/" "m/test8/test8"`)
	r.listLines(`LIST (subscribed recursivematch) "" (m/test2)`, `* LIST (\HasChildren) "/" "m/test2" (CHILDINFO ("SUBSCRIBED"))`)
	r.listLines(`LIST (subscribed recursivematch) "" (m/test2 m/test2/test1)`, `* LIST (\HasNoChildren \Subscribed) "/" "m/test2/test1"`)
	r.listLines(`LIST "" (m/test7 m/test7/test7)`, `* LIST (\HasChildren) "/" "m/test7"`, `* LIST (\HasNoChildren) "/" "m/test7/test7"`)
	// A subscribed name with a subscribed child has CHILDINFO as well
	// (RFC 5258 example 9); a parent that was deleted is \NonExistent.
	r.ok("SUBSCRIBE m/test8")
	r.listLines(`LIST (subscribed recursivematch) "" m/%`,
		`* LIST (\HasNoChildren \Subscribed) "/" "m/test1"`,
		`* LIST (\HasChildren) "/" "m/test2" (CHILDINFO ("SUBSCRIBED"))`,
		`* LIST (\NonExistent \Subscribed) "/" "m/test6"`,
		`* LIST (\HasChildren) "/" "m/test7" (CHILDINFO ("SUBSCRIBED"))`,
		`* LIST (\HasChildren \Subscribed) "/" "m/test8" (CHILDINFO ("SUBSCRIBED"))`)
	r.ok("DELETE m/test7/test7")
	r.ok("DELETE m/test7")
	r.listLines(`LIST (subscribed recursivematch) "" m/test7`, `* LIST (\NonExistent) "/" "m/test7" (CHILDINFO ("SUBSCRIBED"))`)
	r.listLines(`LIST (subscribed recursivematch) "" m/test7 return (children)`, `* LIST (\NonExistent \HasNoChildren) "/" "m/test7" (CHILDINFO ("SUBSCRIBED"))`)
	// LIST-STATUS: for the mailboxes that exist.
	r.listLines(`LIST (subscribed) "" (m/test1 m/test6) return (status (messages))`,
		`* LIST (\HasNoChildren \Subscribed) "/" "m/test1"`, `* STATUS "m/test1" (MESSAGES 0)`,
		`* LIST (\NonExistent \Subscribed) "/" "m/test6"`)
	// Plain LIST and LSUB have no extended data.
	r.listLines(`LSUB "" m/test2%`, `* LSUB (\Noselect) "/" "m/test2"`)
	r.listLines(`LSUB "" m/test2`)
	r.listLines(`LIST "" m/test2`, `* LIST (\HasChildren) "/" "m/test2"`)
}

// SPECIAL-USE (RFC 6154) with RECURSIVEMATCH: CHILDINFO ("SPECIAL-USE")
// for a parent of a special-use mailbox that does not match.
func TestListSpecialUseRecursive(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	r.ok("RENAME Sent Folders/Sent")
	r.listLines(`LIST (special-use) "" %`, `* LIST (\HasNoChildren \Drafts) "/" "Drafts"`, `* LIST (\HasNoChildren \Junk) "/" "Junk"`, `* LIST (\HasNoChildren \Trash) "/" "Trash"`)
	r.listLines(`LIST (special-use recursivematch) "" %`,
		`* LIST (\HasNoChildren \Drafts) "/" "Drafts"`, `* LIST (\HasChildren) "/" "Folders" (CHILDINFO ("SPECIAL-USE"))`,
		`* LIST (\HasNoChildren \Junk) "/" "Junk"`, `* LIST (\HasNoChildren \Trash) "/" "Trash"`)
	// Both criteria: subscribed and special-use. Folders/Sent is not
	// subscribed (RENAME moved no subscription).
	r.listLines(`LIST (special-use subscribed recursivematch) "" F%`)
	r.ok("SUBSCRIBE Folders/Sent")
	r.listLines(`LIST (special-use subscribed recursivematch) "" F%`, `* LIST (\HasChildren) "/" "Folders" (CHILDINFO ("SUBSCRIBED" "SPECIAL-USE"))`)
}

// An account subscribes to a bounded number of names: NO [LIMIT] beyond,
// and UNSUBSCRIBE makes room.
func TestSubscriptionLimit(t *testing.T) {
	e := newEnvStore(t, Config{}, teststore.Options{NoSync: true})
	ctx := t.Context()
	const acct = "info@example.com"
	subs, err := e.st.Subscriptions(ctx, acct)
	testutil.Must(t, err)
	for i := len(subs); i < 1000; i++ {
		name := fmt.Sprint("f", i)
		_, err := e.st.CreateMailbox(ctx, acct, name)
		testutil.Must(t, err)
		testutil.Must(t, e.st.SetSubscribed(ctx, acct, name, true))
	}
	_, err = e.st.CreateMailbox(ctx, acct, "last")
	testutil.Must(t, err)
	r := dialRaw(t, e.implicit, true)
	r.login(acct)
	r.no("LIMIT", "SUBSCRIBE last")
	r.ok("SUBSCRIBE f10") // already subscribed: takes no room
	r.ok("UNSUBSCRIBE f10")
	r.ok("SUBSCRIBE last")
	r.listLines(`LSUB "" last`, `* LSUB () "/" "last"`)
}

// A reference and pattern made one match a name and its ancestors as
// listMatch matches each of them.
func TestListPatternPrefixes(t *testing.T) {
	check := func(name, ref, pattern string) {
		t.Helper()
		at := make([]bool, len(name)+1)
		if p, ok := compileListPattern(ref, pattern); ok {
			p.matchPrefixes(name, at)
		}
		for i := 1; i <= len(name); i++ {
			if i < len(name) && name[i] != '/' {
				if at[i] {
					t.Fatalf("%q ref %q pattern %q: prefix %q is no ancestor, but matched", name, ref, pattern, name[:i])
				}
				continue
			}
			if want := listMatch(name[:i], ref, pattern); at[i] != want {
				t.Fatalf("%q ref %q pattern %q: prefix %q matched %v, listMatch says %v", name, ref, pattern, name[:i], at[i], want)
			}
		}
	}
	for _, c := range listCases {
		check(c.name, c.ref, c.pattern)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	gen := func(max int, chars string) string {
		b := make([]byte, rnd.IntN(max+1))
		for i := range b {
			b[i] = chars[rnd.IntN(len(chars))]
		}
		return string(b)
	}
	for range 50000 {
		check(gen(9, "ab/"), gen(3, "ab/%*"), gen(7, "ab/%*"))
	}
}

// The patterns of a LIST command are bounded in size; runs of wildcards
// and patterns no name can match do not count.
func TestListPatternLimits(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	r.ok("CREATE a/b")
	stars := strings.Repeat("%*", 30000)
	r.listLines(fmt.Sprintf(`LIST "" {%d+}`+"\r\n"+`%s`, len(stars), stars), `* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\HasNoChildren \Drafts) "/" "Drafts"`, `* LIST (\HasNoChildren \Junk) "/" "Junk"`, `* LIST (\HasNoChildren \Sent) "/" "Sent"`,
		`* LIST (\HasNoChildren \Trash) "/" "Trash"`, `* LIST (\HasChildren) "/" "a"`, `* LIST (\HasNoChildren) "/" "a/b"`)
	long := strings.Repeat("x", store.MaxMailboxNameLen+1)
	r.listLines(fmt.Sprintf(`LIST %s *`, long))
	r.listLines(fmt.Sprintf(`LIST %s /a/%%`, long), `* LIST (\HasNoChildren) "/" "a/b"`)
	var many []string
	for i := range 1000 {
		many = append(many, fmt.Sprint("p", 1000+i)) // 5,000 bytes
	}
	r.no("LIMIT", `LIST "" (%s)`, strings.Join(many, " "))
	r.listLines(fmt.Sprintf(`LIST "" (%s a/b)`, strings.Join(many[:100], " ")), `* LIST (\HasNoChildren) "/" "a/b"`)
}
