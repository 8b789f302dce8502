# PostgreSQL for docker/smoke.sh on a machine without an image registry: Debian's postgresql on
# the local debootstrap base, with an entry point that does what the official postgres image's
# does for docker/compose.yaml (POSTGRES_USER / _PASSWORD / _DB, PGPORT, initdb.d scripts).
ARG BASE=gan-bench-base:bookworm
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /docker-entrypoint-initdb.d /var/run/postgresql \
 && chown postgres:postgres /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY docker/test/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
