#!/bin/sh
# Installs (or reports the absence of) the Debian packages that some tests
# use as real clients. Never fails: a missing package makes its tests skip,
# and this script prints why.
need=""
for cmd_pkg in swaks:swaks curl:curl python3:python3 clamd:clamav-daemon mbsync:isync systemd-analyze:systemd useradd:passwd dovecot:dovecot-imapd chromium:chromium; do
	cmd=${cmd_pkg%%:*}; pkg=${cmd_pkg#*:}
	command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need="$need $pkg"
done
# PostgreSQL's server programs are not on PATH (Debian keeps them per version).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need="$need postgresql"
# swaks speaks TLS only with these Perl modules (a Recommends of swaks, which
# --no-install-recommends leaves out).
perl -MNet::SSLeay -MIO::Socket::SSL -e1 >/dev/null 2>&1 || need="$need libnet-ssleay-perl libio-socket-ssl-perl"
[ -z "$need" ] && { echo "test-deps: all test programs present (swaks, curl, python3, clamd, mbsync, systemd-analyze, useradd, dovecot, chromium, postgresql)"; exit 0; }
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: installing$need with apt-get"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >/tmp/yubin-apt.log 2>&1; then
		apt-get update -q >/tmp/yubin-apt.log 2>&1 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >>/tmp/yubin-apt.log 2>&1 ||
		echo "test-deps: could not install$need (see /tmp/yubin-apt.log); tests that need them will skip"
	fi
else
	echo "test-deps: missing$need and not root with apt-get; tests that need them will skip"
fi
exit 0
