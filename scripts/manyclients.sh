#!/usr/bin/env bash
# Many IMAP clients at once on Yubin and on Dovecot, in one run with the same
# client (scripts/bigmailbox load): CLIENTS accounts, each with its own INBOX
# of N messages (the same Maildir), each client fetching its whole mailbox
# (UID FETCH 1:* (FLAGS ENVELOPE)) again and again for DURATION: fetches/s,
# messages/s, median and p99 latency, the first fetch of each apart.
#
#   scripts/manyclients.sh [CLIENTS] [N] [DURATION]     (defaults 100 10000 60s; root for Dovecot)
#
# Yubin: a fresh data dir, the Maildir moved into every account with
# `yubin import` while stopped, imaps 127.0.0.1:31994. Dovecot:
# ../shared/bench's setup (imaps 20993), users load0..@bench.test whose
# maildirs are hard-linked copies of the same Maildir, indexes removed.
set -eu
CLIENTS=${1:-100}
N=${2:-10000}
DUR=${3:-60s}
W=${MANYCLIENTS_DIR:-/tmp/yubin-manyclients}
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
mkdir -p "$W"
(cd "$here" && go build -o "$W/yubin" ./cmd/yubin && go build -o "$W/bigmailbox" ./scripts/bigmailbox)
M=$W/maildir-$N
[ -d "$M/cur" ] || "$W/bigmailbox" gen -n "$N" "$M" >/dev/null

# Yubin.
D=$W/yubin-data
[ -f "$D/yubin.pid" ] && kill "$(cat "$D/yubin.pid")" 2>/dev/null || true
if [ ! -f "$D/imported-$CLIENTS-$N" ]; then
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
imaps = "127.0.0.1:31994"
web = "off"
[imap]
max_connections_per_ip = 0
[auth]
failure_delay = "0s"
[dns]
check_inbound = false
TOML
	F="--config $D/yubin.toml --data $D"
	"$W/yubin" domain add bench.test $F >/dev/null
	start=$(date +%s)
	for i in $(seq 0 $((CLIENTS - 1))); do
		echo pw-load | "$W/yubin" account add "load$i@bench.test" --quota 0 --password-stdin $F >/dev/null
		"$W/yubin" import "load$i@bench.test" "$M" $F >/dev/null
	done
	echo "yubin: $CLIENTS × $N messages imported in $(( $(date +%s) - start )) s"
	touch "$D/imported-$CLIENTS-$N"
fi
F="--config $D/yubin.toml --data $D"
nohup "$W/yubin" serve $F > "$D/yubin.log" 2>&1 &
echo $! > "$D/yubin.pid"
for _ in $(seq 150); do grep -q 'yubin ready' "$D/yubin.log" && break; sleep 0.2; done
grep -q 'yubin ready' "$D/yubin.log" || { echo "yubin did not start; see $D/yubin.log" >&2; exit 1; }

# Dovecot.
id vmail >/dev/null 2>&1 || useradd -u 5000 vmail
mkdir -p /var/pfmail && chown 5000:5000 /var/pfmail
pgrep -x dovecot >/dev/null || bash "$bench/dovecot-setup.sh" >/dev/null 2>&1 </dev/null
for i in $(seq 0 $((CLIENTS - 1))); do
	grep -q "^load$i@bench.test:" /tmp/dvc/passwd ||
		echo "load$i@bench.test:$(doveadm pw -s SHA512-CRYPT -p pw-load):5000:5000::/var/pfmail/bench.test/load$i::" >> /tmp/dvc/passwd
	rm -rf "/var/pfmail/bench.test/load$i" && mkdir -p "/var/pfmail/bench.test/load$i"
	cp -al "$M/cur" "$M/new" "$M/tmp" "/var/pfmail/bench.test/load$i/"
done
chown -R 5000:5000 /var/pfmail/bench.test

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$W/bigmailbox" load -name yubin -addr 127.0.0.1:31994 -users 'load%d@bench.test' -pass pw-load -clients "$CLIENTS" -duration "$DUR"
echo "yubin RSS after: $(grep VmRSS /proc/"$(cat "$D/yubin.pid")"/status)"
"$W/bigmailbox" load -name dovecot -addr 127.0.0.1:20993 -users 'load%d@bench.test' -pass pw-load -clients "$CLIENTS" -duration "$DUR"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
kill "$(cat "$D/yubin.pid")"
