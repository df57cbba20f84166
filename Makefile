# The two commands of the README:
#   make demo   the main job on the embedded default (for now: the offline KDS engine)
#   make test   installs what the tests need, then runs every test, real peers included
GO ?= go
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build demo test unit lint fuzz interop bench clean

build:
	$(GO) build -o bin/gmsa ./cmd/gmsa

demo: build
	bash scripts/demo.sh

test:
	bash scripts/test.sh

unit:
	$(GO) test -race -count=1 ./...

lint:
	$(GO) vet ./...
	$(GO) vet -tags interop ./test/interop/
	$(GO) run $(STATICCHECK) ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# Short coverage-guided runs of every fuzz target (the seeds also run in 'unit').
fuzz:
	bash scripts/fuzz.sh 10s

interop:
	$(GO) test -tags interop -count=1 -v ./test/interop/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/kds ./internal/krbkey

clean:
	rm -rf bin
