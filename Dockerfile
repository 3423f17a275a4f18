# Build the wheels in one stage; run as a non-root user from a slim image in the other.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md MANIFEST.in constraints.txt ./
COPY passwordless ./passwordless
RUN pip install --no-cache-dir --upgrade pip \
 && pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt ".[project]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHON=python \
    STATIC_ROOT=/app/staticfiles VAR_DIR=/app/var
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels \
 && useradd --create-home --uid 10001 app
COPY . .
# collectstatic needs settings that load: throwaway values, used for nothing else.
RUN DEBUG=False SECRET_KEY=build-only JWT_PRIVATE_KEY= ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
 && mkdir -p /app/var && chown -R app /app/var
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
CMD ["sh", "bin/web"]
