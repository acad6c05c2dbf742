package imapd

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// trainings records what Config.Train was told.
type trainings struct {
	mu  sync.Mutex
	got []string
}

func (r *trainings) hook(t Training) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, fmt.Sprintf("%s %s %v spam=%v", t.Account, t.Mailbox, t.UIDs, t.Spam))
}

// take returns what was recorded since the last call.
func (r *trainings) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

func TestTraining(t *testing.T) {
	rec := &trainings{}
	e := newEnv(t, Config{Train: rec.hook})
	const who = "info@example.com"
	for i := range 4 {
		e.deliver(t, who, "INBOX", fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i))
	}
	e.deliver(t, who, "Junk", "Subject: junk\r\n\r\nbuy\r\n")
	c := dialRaw(t, e.implicit, true)
	c.login(who)
	c.ok("CREATE Work")
	check := func(what string, want ...string) {
		t.Helper()
		if got := rec.take(); !slices.Equal(got, want) {
			t.Errorf("%s: trained %q, want %q", what, got, want)
		}
	}
	c.ok("SELECT INBOX")
	c.ok("UID COPY 1 Junk")
	check("copy into Junk", who+" Junk [2] spam=true")
	c.ok("UID MOVE 2 Junk")
	check("move into Junk", who+" Junk [3] spam=true")
	c.ok("UID STORE 3 +FLAGS ($Junk)")
	check("$Junk", who+" INBOX [3] spam=true")
	c.ok("UID STORE 3 -FLAGS ($Junk)")
	check("$Junk taken off")
	c.ok("UID STORE 3 +FLAGS.SILENT ($NotJunk)")
	check("$NotJunk", who+" INBOX [3] spam=false")
	c.ok("UID FETCH 1:4 BODY.PEEK[]")
	check("peek")
	c.ok("UID STORE 4 +FLAGS ($Junk)")
	rec.take()
	c.ok("UID FETCH 1:4 BODY[]")
	check("read in INBOX (not the one flagged $Junk)", who+" INBOX [1 3] spam=false")
	c.ok("UID FETCH 1 BODY[]")
	check("read again: the flag was there already")

	c.ok("SELECT Junk")
	c.ok("UID FETCH 1:* BODY[]")
	check("read in Junk")
	c.ok("UID MOVE 1 Trash")
	check("out of Junk into Trash")
	c.ok("UID MOVE 2 Work")
	check("out of Junk", who+" Work [1] spam=false")
	c.ok("UID COPY 3 INBOX")
	check("copied out of Junk", who+" INBOX [5] spam=false")

	c.ok("SELECT Trash")
	c.ok("UID STORE 1 +FLAGS (\\Seen)")
	check("read in Trash")
	c.ok("EXAMINE INBOX")
	c.ok("UID FETCH 5 BODY[]")
	check("read-only")
}
