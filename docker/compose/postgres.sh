#!/bin/sh
# One PostgreSQL node of docker-compose.yml's stack, for the official postgres image and for
# drdrill/postgres alike (both: account postgres, uid 999, binaries on PATH).
#
#   postgres.sh primary                     initdb on first start, then serve
#   postgres.sh standby NAME HOST:PORT      clone the primary through the fault proxy's
#                                           path HOST:PORT on first start, then stream
set -eu
set -f  # the settings below hold a '*' that must not be globbed
data=/var/lib/postgresql/data/pgdata
# The settings the drills measured their local servers with (topology/postgres.py).
settings="-c listen_addresses=* -c wal_level=replica -c max_wal_senders=10
 -c wal_keep_size=128MB -c hot_standby=on -c wal_retrieve_retry_interval=100ms
 -c restart_after_crash=off -c max_connections=40 -c shared_buffers=16MB
 -c dynamic_shared_memory_type=mmap"

case ${1:-} in
primary)
    if [ ! -s "$data/PG_VERSION" ]; then
        initdb --no-sync -A trust -U postgres -E UTF8 --locale=C -D "$data" >/dev/null
        printf 'host all all all trust\nhost replication all all trust\n' >>"$data/pg_hba.conf"
    fi
    exec postgres -D "$data" $settings -c 'synchronous_standby_names=FIRST 1 ("pg-sync")'
    ;;
standby)
    name=$2
    via=$3
    # The primary and the fault proxy's paths may not be up yet: retry until the clone works.
    until [ -s "$data/PG_VERSION" ]; do
        pg_basebackup -h "${via%:*}" -p "${via#*:}" -U postgres -D "$data" -R -X stream \
            -c fast -N -d "application_name=$name" || { rm -rf "$data"; sleep 1; }
    done
    exec postgres -D "$data" $settings
    ;;
*)
    echo "usage: postgres.sh primary | standby NAME HOST:PORT" >&2
    exit 2
    ;;
esac
