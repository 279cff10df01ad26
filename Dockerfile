# The Malbeacon connector for OpenCTI. No secret is built in: configure it with environment
# variables (see docker-compose.yml) or a mounted config.yml in the working directory.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/malbeacon-connector

# pycti must match the platform's version: docker build --build-arg PYCTI_VERSION=6.8.17 .
ARG PYCTI_VERSION=7.261026.0
COPY requirements.txt ./
RUN pip install -r requirements.txt && pip install pycti==${PYCTI_VERSION}

COPY pyproject.toml README.md ./
COPY src ./src
COPY __metadata__ ./__metadata__
RUN pip install --no-deps . && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin connector

USER connector
# Healthy while the connector rewrites its health file (/tmp by default) and reaches RabbitMQ and OpenCTI.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["malbeacon-connector", "health"]
ENTRYPOINT ["malbeacon-connector"]
