# The exporter and the healer in one image (deploy/compose, deploy/kubernetes).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o /out/deus-exporter ./cmd/exporter && \
    CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o /out/deus-healer ./cmd/healer

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates nftables iptables && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/deus-healer"]
