#!/usr/bin/env bash
# What the test jobs of .github/workflows/ci.yml need inside their Debian
# container (root), mirroring .ci/run:
#   ci-services.sh install   Debian's chromium, socat and psql tools
#                            nginx (the gateway)  # [stage 1]
#                            rabbitmq-server (the event broker)  # [stage 3]
#                            wrk and httperf (make compare, run end to end)  # [stage 4]
#   ci-services.sh start     127.0.0.1:5432 forwarded to $POSTGRES_SERVICE_HOST:5432
#                            RabbitMQ on 127.0.0.1:5672 (guest/guest)  # [stage 3]
set -euo pipefail

install() {
    export DEBIAN_FRONTEND=noninteractive
    # No init system in the container: keep the packages' postinst scripts
    # from starting services; `start` starts what the tests use.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    packages=(chromium socat postgresql-client)
    packages+=(nginx)  # [stage 1]
    packages+=(rabbitmq-server)  # [stage 3]
    packages+=(wrk httperf)  # [stage 4]
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    /usr/bin/chromium --version
    /usr/sbin/nginx -v  # [stage 1]
}

# Whether every service the suites use answers.
ready() {
    pg_isready -q -h 127.0.0.1 -p 5432 || return 1
    rabbitmq-diagnostics -q ping >/dev/null 2>&1 || return 1  # [stage 3]
}

start() {
    : "${POSTGRES_SERVICE_HOST:?host name of the postgres service container}"
    # setsid: the forwarder outlives this step (each step is its own docker exec).
    setsid socat "TCP-LISTEN:5432,bind=127.0.0.1,fork,reuseaddr" \
        "TCP:${POSTGRES_SERVICE_HOST}:5432" </dev/null >/tmp/socat-postgres.log 2>&1 &
    rabbitmq-server -detached  # [stage 3]
    for _ in $(seq 1 60); do
        if ready; then
            break
        fi
        sleep 1
    done
    pg_isready -h 127.0.0.1 -p 5432 -U postgres
    rabbitmq-diagnostics -q ping  # [stage 3]
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    *) echo "usage: $0 install|start" >&2; exit 2 ;;
esac
