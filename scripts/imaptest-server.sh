#!/usr/bin/env bash
# Starts yubin for imaptest (../shared/bench/imaptest.sh): a fresh data dir, IMAP only, on
# loopback (imap 127.0.0.1:30143, imaps 127.0.0.1:30993), and three accounts sharing the
# password imaptest-pw: t1@, t2@ and stress@example.com.
#
#   scripts/imaptest-server.sh [BIN] [DIR]     (defaults: a fresh build, /tmp/yubin-imaptest)
#   imaptest.sh suite 30993 t1@example.com t2@example.com imaptest-pw
#   imaptest.sh stress 30993 stress@example.com imaptest-pw
#   kill "$(cat DIR/yubin.pid)"
set -eu
D=${2:-/tmp/yubin-imaptest}
BIN=${1:-$D/yubin}
rm -rf "$D" && mkdir -p "$D"
if [ "$#" -lt 1 ]; then go build -o "$BIN" ./cmd/yubin; fi
cat > "$D/yubin.toml" <<'TOML'
hostname = "mail.example.com"
[listen]
smtp = "off"
submission = "off"
submissions = "off"
pop3 = "off"
pop3s = "off"
imap = "127.0.0.1:30143"
imaps = "127.0.0.1:30993"
[auth]
failure_delay = "0s"
[dns]
check_inbound = false
TOML
F="--config $D/yubin.toml --data $D"
"$BIN" domain add example.com $F
for u in t1 t2 stress; do echo imaptest-pw | "$BIN" account add "$u@example.com" --password-stdin $F; done
nohup "$BIN" serve $F > "$D/yubin.log" 2>&1 &
echo $! > "$D/yubin.pid"
for _ in $(seq 100); do grep -q 'yubin ready' "$D/yubin.log" && break; sleep 0.2; done
grep -q 'yubin ready' "$D/yubin.log" || { echo "yubin did not start; see $D/yubin.log" >&2; exit 1; }
echo "yubin up, pid $(cat "$D/yubin.pid"), imaps 127.0.0.1:30993"
