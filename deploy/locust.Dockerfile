# Locust with duoserve's locustfiles, for the compose loadtest profile and Kubernetes.
# Build context: the repository root. The image's entrypoint is `locust`.
FROM locustio/locust:2.47.0

USER root
COPY requirements.lock /tmp/req/requirements.lock
RUN grep -v '^# Editable' /tmp/req/requirements.lock > /tmp/req/constraints.txt \
    && pip install --no-cache-dir -c /tmp/req/constraints.txt numpy==2.4.6 pydantic==2.14.4 hdrhistogram==0.10.8 \
    && rm -rf /tmp/req
# The locustfile needs the contract (manifest, payloads, answer checks) and nothing else of the project.
COPY contract/ /app/contract/
COPY loadtests/ /app/loadtests/
ENV PYTHONPATH=/app \
    DUOSERVE_ARTIFACTS=/artifacts

USER locust
WORKDIR /app
EXPOSE 8089 5557
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8089/', timeout=4)"]
