#!/usr/bin/env bash
# What the test jobs of .github/workflows/ci.yml need inside their Debian
# container (root), mirroring .ci/run:
#   ci-services.sh install   Debian's nginx, chromium, rabbitmq-server, socat, psql tools
#   ci-services.sh start     RabbitMQ on 127.0.0.1:5672 (guest/guest) and
#                            127.0.0.1:5432 forwarded to $POSTGRES_SERVICE_HOST:5432
set -euo pipefail

install() {
    export DEBIAN_FRONTEND=noninteractive
    # No init system in the container: keep the packages' postinst scripts
    # from starting services; `start` starts what the tests use.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        chromium nginx rabbitmq-server socat postgresql-client >/dev/null
    /usr/bin/chromium --version
    /usr/sbin/nginx -v
}

start() {
    : "${POSTGRES_SERVICE_HOST:?host name of the postgres service container}"
    # setsid: the forwarder outlives this step (each step is its own docker exec).
    setsid socat "TCP-LISTEN:5432,bind=127.0.0.1,fork,reuseaddr" \
        "TCP:${POSTGRES_SERVICE_HOST}:5432" </dev/null >/tmp/socat-postgres.log 2>&1 &
    rabbitmq-server -detached
    for _ in $(seq 1 60); do
        if pg_isready -q -h 127.0.0.1 -p 5432 && rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
            break
        fi
        sleep 1
    done
    pg_isready -h 127.0.0.1 -p 5432 -U postgres
    rabbitmq-diagnostics -q ping
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    *) echo "usage: $0 install|start" >&2; exit 2 ;;
esac
