# make run ARGS="--listen 127.0.0.1:4873 --public-url http://127.0.0.1:4873"
# make test            gates (gofmt, vet, staticcheck, go mod tidy) + unit tests (-race) + fuzz + integration suite
# make build           ./couchnpm
ARGS ?=

.PHONY: run test build devdb-start devdb-stop

run:
	bash scripts/run.sh $(ARGS)

test:
	bash scripts/test.sh

# couchnpm version prints it; the build information alone has no revision
# where VCS stamping is off (GOFLAGS=-buildvcs=false, a Docker context).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)

build:
	go build -ldflags "-X main.version=$(VERSION)" -o couchnpm ./cmd/couchnpm

devdb-start:
	bash scripts/devdb.sh start

devdb-stop:
	bash scripts/devdb.sh stop
