#!/bin/sh
# First-run demo set-up for "make run": a domain and an admin account, so
# the server can be tried at once. Does nothing once a domain exists.
set -e
bin=$1; data=$2
domains=$("$bin" domain list --json --data "$data") || exit 1
if [ "$domains" != "[]" ]; then
	exit 0
fi
"$bin" domain add example.test --data "$data"
pw=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$pw" | "$bin" account add demo@example.test --role admin --password-stdin --data "$data"
umask 077
printf 'demo@example.test %s\n' "$pw" > "$data/demo-password"
echo "demo account: demo@example.test  password: $pw  (kept in $data/demo-password)"
