# Baribhara Gateway - the two everyday commands:
#   make run    install what is missing, build, start an example upstream and bgw-proxy on examples/quickstart
#   make test   install what is missing, build, run every test (unit, integration, both again under ASan+UBSan, fuzz)

# Debian 12 packages the build and the tests need.
DEPS := build-essential cmake pkg-config clang libclang-rt-14-dev \
        libhttp-parser-dev libmicrohttpd-dev libjansson-dev check \
        libcurl4-openssl-dev libyaml-dev libjwt-dev libssl-dev \
        protobuf-c-compiler libprotobuf-c-dev protobuf-compiler libgrpc-dev python3-grpcio python3-protobuf \
        python3 python3-cryptography python3-kubernetes openssl curl procps nginx-light haproxy wrk prometheus \
        libhiredis-dev redis-server \
        golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev python3-yaml python3-jsonschema

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build run test bench clean helm-files

deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j $(JOBS)

run: build
	@sh examples/quickstart/run.sh

test: build
	cd build && ctest --output-on-failure -j 1
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBGW_SANITIZE=ON >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -L 'unit|integration' -E integration_test_streaming
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBGW_FUZZ=ON >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target fuzz_targets
	cd build-fuzz && ctest --output-on-failure -L fuzz

bench: build
	tests/bench/run.sh

# The chart packages its own copies of the Grafana dashboards and Prometheus alert rules (helm package does
# not follow links out of the chart): copy deploy/grafana/*.json and deploy/prometheus/*.yml (not the promtool
# tests, *.test.yml) into it. The chart test fails while the two differ.
CHART_FILES := deploy/helm/baribhara-gateway/files
helm-files:
	rm -f $(CHART_FILES)/grafana/*.json $(CHART_FILES)/prometheus/*.yml
	mkdir -p $(CHART_FILES)/grafana $(CHART_FILES)/prometheus
	cp deploy/grafana/*.json $(CHART_FILES)/grafana/
	for f in deploy/prometheus/*.yml; do case $$f in *.test.yml) ;; *) cp $$f $(CHART_FILES)/prometheus/ ;; esac; done

clean:
	rm -rf build build-asan build-fuzz
