#!/usr/bin/env bash
# A 100k-message INBOX on Yubin and on Dovecot, measured in one run with the
# same client (scripts/bigmailbox): SELECT, UID FETCH 1:* (FLAGS), UID SEARCH
# by a header and by text, cold (first after start) and warm (median of 3).
#
#   scripts/bigmailbox.sh [N]        (default 100000; needs root for Dovecot)
#
# Yubin: a fresh data dir in $W, the Maildir moved in with `yubin import`
# while stopped, imaps on 127.0.0.1:31993. Dovecot: ../shared/bench's setup
# (imaps 20993) with a user big@bench.test whose maildir is a copy of the same
# Maildir, its indexes removed first so that its cold figures are cold too.
set -eu
N=${1:-100000}
W=${BIGMAILBOX_DIR:-/tmp/yubin-bigmailbox}
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
mkdir -p "$W"
(cd "$here" && go build -o "$W/yubin" ./cmd/yubin && go build -o "$W/bigmailbox" ./scripts/bigmailbox)
M=$W/maildir-$N
[ -d "$M/cur" ] || "$W/bigmailbox" gen -n "$N" "$M"

# Yubin.
D=$W/yubin-data
[ -f "$D/yubin.pid" ] && kill "$(cat "$D/yubin.pid")" 2>/dev/null || true
rm -rf "$D" && mkdir -p "$D"
cat > "$D/yubin.toml" <<'TOML'
hostname = "mail.bench.test"
[listen]
smtp = "off"
submission = "off"
submissions = "off"
pop3 = "off"
pop3s = "off"
imap = "off"
imaps = "127.0.0.1:31993"
web = "off"
[auth]
failure_delay = "0s"
[dns]
check_inbound = false
TOML
F="--config $D/yubin.toml --data $D"
"$W/yubin" domain add bench.test $F >/dev/null
echo pw-big | "$W/yubin" account add big@bench.test --quota 0 --password-stdin $F >/dev/null
start=$(date +%s.%N)
"$W/yubin" import big@bench.test "$M" $F | tail -1
echo "yubin import: $(echo "$(date +%s.%N) - $start" | bc) s"
nohup "$W/yubin" serve $F > "$D/yubin.log" 2>&1 &
echo $! > "$D/yubin.pid"
for _ in $(seq 150); do grep -q 'yubin ready' "$D/yubin.log" && break; sleep 0.2; done
grep -q 'yubin ready' "$D/yubin.log" || { echo "yubin did not start; see $D/yubin.log" >&2; exit 1; }

# Dovecot.
id vmail >/dev/null 2>&1 || useradd -u 5000 vmail
mkdir -p /var/pfmail && chown 5000:5000 /var/pfmail
pgrep -x dovecot >/dev/null || bash "$bench/dovecot-setup.sh" >/dev/null 2>&1 </dev/null
grep -q '^big@bench.test:' /tmp/dvc/passwd ||
	echo "big@bench.test:$(doveadm pw -s SHA512-CRYPT -p pw-big):5000:5000::/var/pfmail/bench.test/big::" >> /tmp/dvc/passwd
doveadm kick big@bench.test >/dev/null 2>&1 || true
rm -rf /var/pfmail/bench.test/big && mkdir -p /var/pfmail/bench.test/big
cp -al "$M/cur" "$M/new" "$M/tmp" /var/pfmail/bench.test/big/
chown -R 5000:5000 /var/pfmail/bench.test

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$W/bigmailbox" measure -name yubin -addr 127.0.0.1:31993 -user big@bench.test -pass pw-big
"$W/bigmailbox" measure -name dovecot -addr 127.0.0.1:20993 -user big@bench.test -pass pw-big
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
kill "$(cat "$D/yubin.pid")"
