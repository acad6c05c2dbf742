package main

import (
	"strconv"
	"strings"
	"testing"
)

func TestLookupPasswd(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/bash\r\n# comment\nyubinx:x:5:5::/:/bin/sh\nbad:x:a:1::/:/bin/sh\nyubin:x:999:998:Yubin mail server:/var/lib/yubin:/usr/sbin/nologin\n"
	for _, c := range []struct {
		name     string
		uid, gid int
		ok       bool
	}{{"root", 0, 0, true}, {"yubin", 999, 998, true}, {"yubinx", 5, 5, true}, {"bad", 0, 0, false}, {"nobody", 0, 0, false}, {"", 0, 0, false}} {
		uid, gid, ok := lookupPasswd([]byte(passwd), c.name)
		if uid != c.uid || gid != c.gid || ok != c.ok {
			t.Errorf("%q: %d %d %v, want %d %d %v", c.name, uid, gid, ok, c.uid, c.gid, c.ok)
		}
	}
}

// FuzzLookupPasswd: whatever the file holds, a user found has a line
// "name:…:uid:gid…" in it, with non-negative numbers.
func FuzzLookupPasswd(f *testing.F) {
	f.Add("root:x:0:0:root:/root:/bin/bash\nyubin:x:999:999::/var/lib/yubin:/usr/sbin/nologin\n", "yubin")
	f.Add("yubin:x:-1:+2\n", "yubin")
	f.Add(":::\n", "")
	f.Fuzz(func(t *testing.T, passwd, name string) {
		uid, gid, ok := lookupPasswd([]byte(passwd), name)
		if !ok {
			return
		}
		if uid < 0 || gid < 0 {
			t.Fatalf("%q in %q: uid %d gid %d", name, passwd, uid, gid)
		}
		found := false
		for _, line := range strings.Split(passwd, "\n") {
			f := strings.Split(strings.TrimSuffix(line, "\r"), ":")
			if len(f) < 4 || f[0] != name {
				continue
			}
			u, err1 := strconv.Atoi(f[2])
			g, err2 := strconv.Atoi(f[3])
			if err1 == nil && err2 == nil && u == uid && g == gid {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("%q found in %q with uid %d, on no line", name, passwd, uid)
		}
	})
}
