# couchnpm: a static binary on a minimal, non-root base image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build context has no .git (.dockerignore): pass the version, e.g.
# docker build --build-arg VERSION="$(git describe --tags --always --dirty)" .
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w -X main.version=${VERSION}" -o /out/couchnpm ./cmd/couchnpm

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/couchnpm /couchnpm
EXPOSE 4880
ENV COUCHNPM_LISTEN=0.0.0.0:4880
ENTRYPOINT ["/couchnpm", "serve"]
