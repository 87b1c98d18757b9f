# blog-monolith: the Django monolith (every stage).
# Behind the gateway at stages 1-3.  # [stage 1]
# At stage 4, beside the services, out of the gateway's path.  # [stage 4]
# Build context: the repository root.
#   docker build -f docker/monolith.Dockerfile -t blog-monolith .
# One image, one process per container, chosen by the command:
#   (default)                                       gunicorn on $PORT (8000)
#   python manage.py migrate --noinput              schema migrations (one-shot)
# >>> stage 3: the events
#   python manage.py outbox_relay                   stage 3: publishes post events
#   python manage.py bus_consume --service monolith stage 3: applies comment events
#   python manage.py bus_declare --service S --key K    event topology (one-shot)
# <<< stage 3

# --- build: a virtualenv with the pinned runtime requirements -----------------
FROM python:3.11-slim-bookworm AS build
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements/monolith.txt requirements/monolith.txt
COPY libs/ libs/
# requirements/monolith.txt is the runtime alone (the test tools and the
# editable libs are the dev machine's, in requirements/runtime.txt and dev.txt);
# libs is installed as a regular package.
RUN pip install --no-cache-dir -r requirements/monolith.txt ./libs

# --- runtime ------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=monolith.config.settings.production \
    PORT=8000 \
    WHITENOISE_USE_FINDERS=0
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY docker/healthcheck.py /opt/blog/healthcheck.py
WORKDIR /app
COPY manage.py ./
COPY monolith/ monolith/
# The browser UI, served at / by WhiteNoise (WHITENOISE_ROOT = web/).
COPY web/ web/
# Static files (DRF, Swagger UI from drf-spectacular-sidecar) collected into
# STATIC_ROOT at build time, so WhiteNoise serves them without the finders
# (WHITENOISE_USE_FINDERS=0 above). Production settings refuse to load without
# their variables: placeholders for this build step only, never in the image.
RUN DJANGO_SECRET_KEY=build-time-collectstatic-only DJANGO_ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    python manage.py collectstatic --noinput -v0
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/blog/healthcheck.py"]
# gunicorn binds 0.0.0.0:$PORT. No control socket (gunicorn 27 would create
# one under $HOME); heartbeat files in memory. GUNICORN_CMD_ARGS adds options.
CMD ["gunicorn", "monolith.config.wsgi", "--workers", "2", "--no-control-socket", "--worker-tmp-dir", "/dev/shm", "--limit-request-line", "8190"]
