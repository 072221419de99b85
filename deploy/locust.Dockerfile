# Locust with duoserve's locustfiles, for the compose loadtest profile and Kubernetes.
# Build context: the repository root. The image's entrypoint is `locust`.
FROM locustio/locust:2.47.0

USER root
COPY requirements.lock /tmp/req/requirements.lock
RUN grep -v '^# Editable' /tmp/req/requirements.lock > /tmp/req/constraints.txt \
    && pip install --no-cache-dir -c /tmp/req/constraints.txt numpy==2.4.6 \
    && rm -rf /tmp/req
COPY services/__init__.py /app/services/__init__.py
COPY services/common/ /app/services/common/
COPY loadtests/ /app/loadtests/
ENV PYTHONPATH=/app \
    DUOSERVE_ARTIFACTS=/artifacts

USER locust
WORKDIR /app
EXPOSE 8089 5557
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8089/', timeout=4)"]
