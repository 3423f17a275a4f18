# Install the packages in one stage, into /install laid out as the root of the other, which
# runs them as a non-root user from a slim image: one COPY, and no wheels left in a layer.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md MANIFEST.in constraints.txt ./
COPY passwordless ./passwordless
RUN pip install --no-cache-dir --upgrade pip \
 && pip install --no-cache-dir --root /install -c constraints.txt ".[project]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHON=python \
    STATIC_ROOT=/app/staticfiles VAR_DIR=/app/var
WORKDIR /app
COPY --from=build /install /
RUN useradd --create-home --uid 10001 app
COPY . .
# collectstatic needs settings that load: throwaway values, used for nothing else.
RUN DEBUG=False SECRET_KEY=build-only JWT_PRIVATE_KEY= ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
 && mkdir -p /app/var && chown -R app /app/var
USER app
EXPOSE 8000
# Asks /healthz where bin/web binds (BIND), with a Host that ALLOWED_HOSTS admits: bin/healthcheck.
# A worker or beat container from this image has a check of its own (docker-compose.yml).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "bin/healthcheck"]
CMD ["sh", "bin/web"]
