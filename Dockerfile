# Minimal image; multi-stage build, healthcheck and whitenoise come with the deployment milestone.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY passwordless ./passwordless
RUN pip install --no-cache-dir .
COPY . .
RUN useradd --create-home app && mkdir -p var && chown app var
USER app
EXPOSE 8000
CMD ["gunicorn", "-c", "config/gunicorn.py", "config.wsgi", "--bind", "0.0.0.0:8000"]
