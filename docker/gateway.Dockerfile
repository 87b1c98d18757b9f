# blog-gateway: nginx running the route table of one stage (gateway/routes.py),
# rendered at build time by gateway/render.py. Stage 1 on (stage 0 has no gateway).
# Build context: the repository root.
#   docker build -f docker/gateway.Dockerfile --build-arg STAGE=2 -t blog-gateway:stage-2 .
# Upstreams default to the compose / Kubernetes service names; override with
# --build-arg MONOLITH_URL=... (nginx resolves them when it starts).

# --- render: nginx.conf for STAGE, from the route table (stdlib only) ---------
FROM python:3.11-slim-bookworm AS render
# Which stage's table: required (compose, the images workflow and the README pass it).
ARG STAGE
ARG MONOLITH_URL=http://monolith:8000
# >>> stage 4: the posts service
ARG POSTS_URL=http://posts:8001
# <<< stage 4
# >>> stage 2: the comments service
ARG COMMENTS_URL=http://comments:8002
# <<< stage 2
ENV PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY gateway/ gateway/
# --std-logs: the error log goes to stderr, the access and shadow logs to
# /dev/stdout. Only the pid file and the tmp_* temp folders stay relative to
# nginx's -p prefix, and nginx creates those itself.
RUN test -n "$STAGE" || { echo "pass --build-arg STAGE=N (1 or later)" >&2; exit 1; } \
    && mkdir /out \
    && UI_DIR=/srv/gateway/web python -m gateway.render --stage "$STAGE" \
       --listen 0.0.0.0:8080 --std-logs --out /out/nginx.conf

# --- runtime: unprivileged nginx (uid 10001, like every blog image) -----------
FROM nginxinc/nginx-unprivileged:1.28-alpine AS runtime
# The config and the UI are owned by root: read-only for nginx's user.
COPY --from=render /out/nginx.conf /etc/blog-gateway/nginx.conf
# The browser UI, served at / where the stage's route table says so (UI_DIR at
# render time).
COPY web/ /srv/gateway/web/
USER 10001:10001
EXPOSE 8080
# busybox wget: the alpine image has it; /healthz is answered by nginx itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]
# nginx directly, not the base image's entrypoint (its scripts edit the stock
# /etc/nginx config, which is not used). "daemon off" is in the rendered config.
# -p /tmp/: the only path nginx writes (nginx.pid, tmp_*); writable in a plain
# container, the emptyDir in Kubernetes (read-only root file system).
# -e stderr: not the compiled-in error log, which it would open before reading
# the config.
ENTRYPOINT ["nginx", "-e", "stderr", "-p", "/tmp/", "-c", "/etc/blog-gateway/nginx.conf"]
CMD []
