# The two commands of the README:
#   make run    the main job: gmsa server --dev on the embedded store in ./gmsa-data
#   make test   installs what the tests need, then runs every test, real peers included
# and: make demo (the offline KDS engine end to end), make bench, make fuzz, make deb.
GO ?= go
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build run demo test unit lint fuzz interop bench bench-ldap deb clean

DATA ?= gmsa-data

build:
	$(GO) build -o bin/gmsa ./cmd/gmsa

run: build
	bin/gmsa server --dev --data $(DATA)

demo: build
	bash scripts/demo.sh

test:
	bash scripts/test.sh

unit:
	$(GO) test -race -count=1 ./...

lint:
	$(GO) vet ./...
	$(GO) vet -tags interop ./test/interop/
	$(GO) vet -tags adversarial ./test/adversarial/
	$(GO) run $(STATICCHECK) ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# The Debian package (nfpm, deploy/nfpm.yaml) in dist/.
deb:
	bash scripts/build-deb.sh

# Short coverage-guided runs of every fuzz target (the seeds also run in 'unit').
fuzz:
	bash scripts/fuzz.sh 10s

interop:
	$(GO) test -tags interop -count=1 -v ./test/interop/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/kds ./internal/krbkey
	$(GO) test -run '^$$' -bench 'Passwords|TokenNested|Open100k' -benchmem ./internal/directory
	$(GO) test -run '^$$' -bench CreateGMSAs -benchtime 100000x ./internal/directory

# Our LDAP server, slapd and Samba 4.22 side by side (root; see docs/benchmarks.md).
bench-ldap:
	bash scripts/bench-ldap.sh 5

clean:
	rm -rf bin $(DATA)
