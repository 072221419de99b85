#!/bin/sh
# Container entrypoint: TorchServe in the foreground plus the inference-key renewer
# (keys expire after token_expiration_min; see keyrefresh.py). TERM/INT stop TorchServe.
set -eu
cd /home/model-server/keys
torchserve --foreground --ncs \
    --ts-config /home/model-server/config.properties \
    --log-config /home/model-server/log4j2.xml \
    --model-store /models/model-store --models all &
ts=$!
trap 'kill -TERM "$ts" 2>/dev/null' TERM INT
python /home/model-server/keyrefresh.py \
    --key-file /home/model-server/keys/key_file.json \
    --management http://127.0.0.1:8081 --every-min "${KEY_RENEW_MIN:-30}" &
wait "$ts"
