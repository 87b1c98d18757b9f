# blog-comments: the comments service (stage 2 on), data in MongoDB (pymongo;
# no SQL database, so no migrate).
# Build context: the repository root.
#   docker build -f docker/comments.Dockerfile -t blog-comments .
# One image, one process per container, chosen by the command:
#   (default)                                       gunicorn on $PORT (8002)
#   python manage.py import_monolith_comments       data migration into stage 2 (one-shot)
# >>> stage 3: the events
#   python manage.py comments_outbox_relay          publishes comment events
#   python manage.py bus_consume --service comments applies post events (replica)
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
COPY services/comments/requirements-runtime.txt services/comments/requirements-runtime.txt
COPY libs/ libs/
# requirements-runtime.txt is the service's runtime alone (its requirements.txt
# adds the test tools and installs libs editable, for development); libs is
# installed as a regular package.
RUN pip install --no-cache-dir -r services/comments/requirements-runtime.txt ./libs

# --- runtime ------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=comments_service.settings.production \
    PORT=8002
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY docker/healthcheck.py /opt/blog/healthcheck.py
WORKDIR /app/services/comments
COPY services/comments/ ./
# Swagger UI's files (drf-spectacular-sidecar) collected into STATIC_ROOT.
# (The comments settings keep WhiteNoise's finders on; the collected copy is
# what it serves first.) Placeholder variables for the production settings,
# for this build step only.
RUN DJANGO_SECRET_KEY=build-time-collectstatic-only DJANGO_ALLOWED_HOSTS=localhost \
    MONGO_URL=mongodb://mongo:27017 POSTS_URL=http://monolith:8000 \
    python manage.py collectstatic --noinput -v0
USER 10001:10001
EXPOSE 8002
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/blog/healthcheck.py"]
CMD ["gunicorn", "comments_service.wsgi", "--workers", "2", "--no-control-socket", "--worker-tmp-dir", "/dev/shm", "--limit-request-line", "8190"]
