# Themis Maintenance: one image for `themisctl worker`, `themisctl api` and
# the CLI. Build from the repository root:
#   docker build -t themis-maintenance:latest .
# The runtime stage carries the PostgreSQL 15 client and server binaries
# (pg_basebackup, pg_dump, initdb, pg_ctl, postgres) that backup
# verification and DR drill restores run; driver/postgres/pgbin finds them
# in /usr/lib/postgresql/15/bin (THEMIS_PG_BINDIR).

# --- build: a static binary ---------------------------------------------
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" -o /out/themisctl ./cmd/themisctl

# --- runtime: small Debian base with PostgreSQL 15 binaries ---------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata postgresql-15 postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man \
 && groupadd --system --gid 10001 themis \
 && useradd --system --uid 10001 --gid themis --home-dir /var/lib/themis --shell /usr/sbin/nologin themis \
 && mkdir -p /var/lib/themis /var/backups/themis /etc/themis \
 && chown -R themis:themis /var/lib/themis /var/backups/themis
COPY --from=build /out/themisctl /usr/local/bin/themisctl
ENV THEMIS_PG_BINDIR=/usr/lib/postgresql/15/bin \
    THEMIS_CONFIG=/etc/themis/config.yaml \
    THEMIS_DATA_DIR=/var/lib/themis
USER 10001:10001
WORKDIR /var/lib/themis
# 8080: API (themisctl api); 9464: worker /metrics, /healthz, /readyz.
EXPOSE 8080 9464
ENTRYPOINT ["/usr/local/bin/themisctl"]
CMD ["worker"]
