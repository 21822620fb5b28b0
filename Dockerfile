# Strada: one static binary on a minimal, non-root base image.
#
#   docker build -t strada .
#   docker run -p 8090:8090 -v strada-data:/pb_data strada

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# SQLite is pure Go (modernc.org/sqlite) and the web client is embedded, so
# the binary needs no C library and no files beside it.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/strada . \
	&& mkdir -p /out/pb_data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/strada /usr/local/bin/strada
# An empty data directory owned by the non-root user (65532, "nonroot" in
# the base image), so that a new named volume mounted here is writable.
COPY --from=build --chown=65532:65532 /out/pb_data /pb_data
USER 65532:65532
VOLUME /pb_data
# 8090: HTTP (API, web client, admin UI). 4222: the embedded NATS server,
# reachable from outside the container only with
# STRADA_NATS_LISTEN=0.0.0.0:4222 (it has no authentication: private
# networks only).
EXPOSE 8090 4222
ENTRYPOINT ["/usr/local/bin/strada"]
CMD ["serve", "--http", "0.0.0.0:8090", "--dir", "/pb_data"]
