# The central services: the fleet server (default) and the sandbox platform.
#
#   docker build -t kiosk-central .
#   docker run --rm -v fleet:/data -e ADMIN_PASSWORD=... kiosk-central \
#       fleet-server init --admin admin --password-env ADMIN_PASSWORD      # once: CA + admin
#   docker run -d -p 8470:8470 -v fleet:/data kiosk-central                # the fleet server
#   docker run -d -p 8085:8085 -e HEALTHCHECK_URL=http://127.0.0.1:8085/healthz kiosk-central \
#       sandbox --host 0.0.0.0 --port 8085 --data /data/sandbox            # never in production
#
# docs/deploy.md: PostgreSQL, several server processes behind a TLS-terminating balancer,
# backups and upgrades.
FROM python:3.11-slim

# The sandbox renders Chinese e-certificate PDFs with WenQuanYi Micro Hei
# (kiosk/platform/sandbox/certificates.py). Nothing else comes from Debian: every Python
# dependency below ships manylinux wheels.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only the server side of requirements.lock, with its exact pins: the whole lock would add
# Kivy, pyscard, pyzbar, the test tools and their native libraries, none of which the fleet
# server or the sandbox imports. --no-deps: the list is the complete closure (checked by
# building it in a clean venv and running both services, see docs/deploy.md), so pip cannot
# quietly pull an unpinned version.
COPY requirements.lock ./
RUN grep -E '^(aiohappyeyeballs|aiohttp|alembic|aiohttp-jinja2|aiosignal|aiosqlite|annotated-types|argon2-cffi|argon2-cffi-bindings|asyncpg|attrs|cffi|cryptography|frozenlist|greenlet|idna|Jinja2|Mako|MarkupSafe|multidict|pillow|prometheus_client|propcache|pycparser|pydantic|pydantic_core|python-json-logger|segno|setuptools|SQLAlchemy|typing-inspection|typing_extensions|yarl)==' \
        requirements.lock > server-requirements.txt \
    && test "$(wc -l < server-requirements.txt)" -eq 33 \
    && pip install --no-cache-dir --no-deps -r server-requirements.txt

# The project itself, without its declared dependencies (the client side's are not wanted).
COPY pyproject.toml README.md ./
COPY kiosk ./kiosk
COPY fleet ./fleet
COPY provisioning ./provisioning
COPY drivers ./drivers
COPY screens ./screens
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && rm -rf /src

RUN useradd --system --uid 10001 --home-dir /data --create-home kiosk
USER kiosk
WORKDIR /data
ENV FLEET_STATE_DIR=/data/fleet \
    PYTHONUNBUFFERED=1 \
    HEALTHCHECK_URL=http://127.0.0.1:8470/healthz
VOLUME ["/data"]
EXPOSE 8470 8085

# /healthz answers 200 only when the database answers (503 otherwise). slim has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4)"]

ENTRYPOINT ["kiosk"]
CMD ["fleet-server", "serve", "--host", "0.0.0.0", "--port", "8470"]
