# tapline — the two commands a newcomer needs are in README.md:
#   make test    unit tests (-race) + integration tests against a real local
#                Kafka and Elasticsearch, started and stopped here
#   make demo    the whole scenario on the embedded file:// log: a demo shop
#                as production and as staging with a regression, live capture
#                on lo, replay, report (needs root or CAP_NET_RAW)

SHELL := /bin/bash
GO ?= go
STACK_SCRIPT := deploy/local/stack.sh
# Unless set by the caller, tests use the stack that `make test` starts.
KAFKA_BROKERS ?= 127.0.0.1:9092
ES_URL ?= http://127.0.0.1:9200
PROTOC_VERSION := 4.33.5
PROTOC := $(HOME)/.m2/repository/com/google/protobuf/protoc/$(PROTOC_VERSION)/protoc-$(PROTOC_VERSION)-linux-x86_64.exe
FUZZTIME ?= 10s

.PHONY: deps build demo test unit bench bench-replay bench-capture lint fuzz fuzz-smoke proto stack-up stack-down clean

# Live capture uses libpcap through cgo: building needs its headers.
deps: ## install the system packages the build needs (as root, with apt)
	@test -e /usr/include/pcap.h || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing libpcap-dev"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libpcap-dev >/dev/null || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libpcap-dev >/dev/null; }; \
	  else echo "libpcap headers missing: install libpcap-dev (Debian/Ubuntu) or libpcap-devel (Fedora)"; exit 1; fi; }

build: deps ## build bin/tapline
	$(GO) build -o bin/tapline ./cmd/tapline

# deploy/demo/main.go drives it; everything lands in .demo/ (report.html).
# STACK=kafka runs the same scenario through the local Kafka and
# Elasticsearch (started here, left running) and reports from Elasticsearch.
STACK ?= file
demo: build ## record, replay and diff a demo shop on this machine, no Kafka or Elasticsearch (root or CAP_NET_RAW); STACK=kafka for the real stack
	@if [ "$(STACK)" = kafka ]; then $(STACK_SCRIPT) up; fi
	$(GO) run ./deploy/demo -tapline bin/tapline -dir .demo -stack $(STACK)

# The stack is started first, and stopped whatever the tests do (set
# KEEP_STACK=1 to leave it running for the next run). Its data is wiped on
# the way out: this Elasticsearch cannot delete data streams, so test
# streams would pile up (see deploy/local/README.md).
test: deps ## all tests, with the real local stack
	$(GO) vet ./...
	$(STACK_SCRIPT) up
	rc=0; KAFKA_BROKERS=$(KAFKA_BROKERS) ES_URL=$(ES_URL) $(GO) test -race -count=1 -timeout 20m ./... || rc=$$?; \
	  if [ -z "$$KEEP_STACK" ]; then $(STACK_SCRIPT) down --wipe || true; fi; exit $$rc
	$(MAKE) --no-print-directory fuzz-smoke

unit: deps ## only the tests that need no Kafka or Elasticsearch
	$(GO) test -race -count=1 ./schema/... ./recorder/... ./replayer/... ./internal/stream/... ./internal/hostspeed/...

# HostSpeed comes first: it says how far the host slowed this machine's
# CPUs down while the other figures were taken (internal/hostspeed).
bench: ## benchmarks of the hot paths (figures go to BENCHMARKS.md)
	$(GO) test -run='^$$' -bench=HostSpeed -benchtime=10x ./internal/hostspeed
	$(GO) test -run='^$$' -bench=. -benchmem ./schema/... ./recorder/...
	$(GO) test -run='^$$' -bench=ReplayRate -benchmem ./replayer/...
	$(GO) test -run='^$$' -bench=ScheduleError -benchtime=20x ./replayer/...

# The replayer's issue-4 figures: replay rate and schedule error three
# times each (20 runs of 0.5 s per schedule-error figure), then memory
# through a staging outage (TAPLINE_BENCH_OUTAGE, default 60s, twice:
# refused and hanging); about 5 minutes.
bench-replay: ## replay rate, schedule error, memory during a staging outage (figures go to BENCHMARKS.md)
	$(GO) test -run='^$$' -bench=HostSpeed -benchtime=10x ./internal/hostspeed
	$(GO) test -run='^$$' -bench=ReplayRate -count=3 ./replayer/...
	$(GO) test -run='^$$' -bench=ScheduleError -benchtime=20x -count=3 ./replayer/...
	$(GO) test -run='^$$' -bench=StagingOutage -benchtime=1x ./replayer/...

# Real loopback traffic (captured with tcpdump into .cache/bench-capture,
# reused while it matches) read by the recorder offline, live capture at
# fixed rates, and 10k idle connections; prints Markdown tables with a
# verdict per issue-3 target. Needs root and tcpdump; about 3 minutes.
# Flags: BENCH_CAPTURE_FLAGS='-fresh -cpuprofile .cache/bench-capture'.
bench-capture: deps ## capture-path figures on real traffic (root, tcpdump; figures go to BENCHMARKS.md)
	$(GO) run ./recorder/bench $(BENCH_CAPTURE_FLAGS)

# Every Fuzz* target of every package, found with go test -list; their seed
# corpora (f.Add and testdata/fuzz) also run as plain tests in make test.
fuzz: ## run each fuzz target for FUZZTIME (default 10s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The parsers that face hostile input, fuzzed briefly by make test (issue 7):
# HTTP streams, capture files, schema records, rewrite rules, the JSON diff.
# Budgets are execution counts (package:target:count, about 3 s each here),
# not durations: a -fuzztime duration can fail with a spurious "context
# deadline exceeded" in Go 1.26 (golang/go#75804).
SMOKE_FUZZ := ./recorder:FuzzParser:20000 ./recorder:FuzzCaptureFile:200 ./schema:FuzzDecode:20000 \
	./replayer:FuzzRules:3000 ./analyzer/diff:FuzzJSONDiff:10000
fuzz-smoke: ## fuzz the five hostile-input parsers briefly (a fixed number of executions each; part of make test)
	@for t in $(SMOKE_FUZZ); do \
	  pkg=$${t%%:*}; rest=$${t#*:}; target=$${rest%%:*}; n=$${rest#*:}; \
	  echo "== fuzz $$target in $$pkg, $$n executions"; \
	  $(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$${n}x $$pkg || exit 1; \
	done

lint: deps ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

proto: ## regenerate schema/tapline.pb.go (protoc from Maven Central)
	test -x $(PROTOC) || { mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get \
	  -Dartifact=com.google.protobuf:protoc:$(PROTOC_VERSION):exe:linux-x86_64 -Dtransitive=false && chmod +x $(PROTOC); }
	GOBIN=$(CURDIR)/.cache/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go
	PATH=$(CURDIR)/.cache/bin:$$PATH $(PROTOC) -I schema --go_out=schema --go_opt=paths=source_relative schema/tapline.proto

stack-up: ## start (or reuse) the local Kafka and Elasticsearch
	$(STACK_SCRIPT) up

stack-down: ## stop the local Kafka and Elasticsearch
	$(STACK_SCRIPT) down

clean:
	rm -rf bin .cache
