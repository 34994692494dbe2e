# Thin wrapper over CMake so the README's commands stay short.
#   make deps    install the Debian packages (scripts/install-deps.sh)
#   make         Release build in build/release
#   make run     the main job: build, show the CLI and configuration, generate with a test model
#   make test    Release (-Werror) and ASan+UBSan builds, CTest in both (label slow excluded)
#   make fuzz    every libFuzzer target for FUZZ_SECONDS (default 60)
#   make format / make lint
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
CTEST_ARGS ?= -LE slow
RELEASE := build/release
ASAN := build/asan

.PHONY: all deps build run test test-release test-asan fuzz format format-check lint clean

all: build

deps:
	scripts/install-deps.sh

build:
	cmake -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release -DINFERNO_WERROR=ON
	cmake --build $(RELEASE) -j$(JOBS)

STORIES := ../shared/testdata/models/stories260K.gguf

run: build
	$(RELEASE)/inferno --help
	$(RELEASE)/inferno config show --origin
	@if [ -f $(STORIES) ]; then \
	  $(RELEASE)/inferno run -m $(STORIES) -p "Once upon a time" -n 32 --temp 0; \
	else echo "($(STORIES) not found: skipping the generation example)"; fi

test-release: build
	cd $(RELEASE) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

test-asan:
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
