# blog-posts: the posts service (stage 4), on its own PostgreSQL database.
# Build context: the repository root.
#   docker build -f docker/posts.Dockerfile -t blog-posts .
# One image, one process per container, chosen by the command:
#   (default)                                    gunicorn on $PORT (8001)
#   python manage.py migrate --noinput           schema migrations (one-shot)
#   python manage.py outbox_relay                publishes post events
#   python manage.py bus_consume --service posts applies comment events (async counts)
#   python manage.py import_monolith_posts       data migration into stage 4 (one-shot)

# --- build: a virtualenv with the pinned runtime requirements -----------------
FROM python:3.11-slim-bookworm AS build
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY services/posts/requirements-runtime.txt services/posts/requirements-runtime.txt
COPY libs/ libs/
# requirements-runtime.txt is the service's runtime alone (its requirements.txt
# adds the test tools and installs libs editable, for development); libs is
# installed as a regular package.
RUN pip install --no-cache-dir -r services/posts/requirements-runtime.txt ./libs

# --- runtime ------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=posts_service.settings.production \
    PORT=8001 \
    WHITENOISE_USE_FINDERS=0
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY docker/healthcheck.py /opt/blog/healthcheck.py
# The repository's layout is kept: the settings locate the repo root two
# folders above the service (REPO_ROOT = SERVICE_DIR.parents[1]).
WORKDIR /app/services/posts
COPY services/posts/ ./
# Swagger UI's files (drf-spectacular-sidecar) collected into STATIC_ROOT, so
# WhiteNoise serves them without the finders. Placeholder variables for the
# production settings, for this build step only.
RUN DJANGO_SECRET_KEY=build-time-collectstatic-only DJANGO_ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    python manage.py collectstatic --noinput -v0
USER 10001:10001
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/blog/healthcheck.py"]
CMD ["gunicorn", "posts_service.wsgi", "--workers", "2", "--no-control-socket", "--worker-tmp-dir", "/dev/shm", "--limit-request-line", "8190"]
