# The export job: builds artifacts/ (weights, TorchScript, ONNX, .mar, SavedModels,
# manifest.json) with `python -m stack.build --root /artifacts` and exits. The same image
# adds a user's model to the volumes: `duoserve models add` (README, "Docker / GPU hosts");
# onnx2tf's venv is made on first use inside the artifacts volume (it pins TensorFlow 2.19).
# Build context: the repository root. CPU is enough: the export takes about a minute.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DUOSERVE_ARTIFACTS=/artifacts \
    DUOSERVE_ONNX2TF_VENV=/artifacts/.converters/onnx2tf

WORKDIR /app
COPY requirements.lock /tmp/req/requirements.lock
# torch from the CPU index first (no CUDA wheels in a job that needs none), then the rest
# of what the export imports, every version from requirements.lock.
RUN grep -v '^# Editable' /tmp/req/requirements.lock > /tmp/req/constraints.txt \
    && pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -c /tmp/req/constraints.txt \
        tensorflow==2.21.0 keras==3.15.1 onnx==1.23.2 onnxscript==0.7.2 onnxruntime==1.32.0 \
        torch-model-archiver==0.12.0 scikit-learn==1.9.1 pyyaml==6.0.4 numpy==2.4.6 \
        pydantic==2.14.4 pydantic-settings==2.16.3 tf2onnx==1.17.0 \
    && pip install --no-deps -c /tmp/req/constraints.txt onnx2torch \
    && rm -rf /tmp/req \
    && useradd --uid 10002 --user-group --create-home --shell /usr/sbin/nologin export \
    && mkdir -p /artifacts/tf \
    && chown -R export:export /artifacts

COPY contract/ /app/contract/
COPY services/ /app/services/
COPY stack/ /app/stack/

USER export
# Fresh named volumes mounted at /artifacts and /artifacts/tf take this ownership.
VOLUME ["/artifacts", "/artifacts/tf"]
# One-shot job: nothing to probe; compose waits for it with service_completed_successfully.
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m", "stack.build", "--root", "/artifacts"]
