#!/bin/sh
# Container entrypoint: write the model repository from /artifacts (the export job's), then Triton in
# the foreground with model control off. TRITON_DEVICE=cpu puts the instances on the CPU (the CPU override).
set -eu
python3 -m services.triton_api repository --out /run/duoserve/repository --target image --device "${TRITON_DEVICE:-gpu}"
exec tritonserver \
    --model-repository=/run/duoserve/repository \
    --model-control-mode=none \
    --strict-model-config=true \
    --strict-readiness=true \
    --exit-on-error=true \
    --http-port=8000 --grpc-port=8001 --metrics-port=8002 \
    --allow-sagemaker=false --allow-vertex-ai=false
