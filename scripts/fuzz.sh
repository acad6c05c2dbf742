#!/bin/sh
# Runs every Fuzz* target in the module for $1 (default 20s) each.
set -e
t=${1:-20s}
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
	dir=$(dirname "$f")
	for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
		echo "fuzz: $dir $name ($t)"
		go test -run=NONE -fuzz="^$name\$" -fuzztime="$t" "$dir"
	done
done
