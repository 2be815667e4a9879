#!/usr/bin/env bash
# One device session's measurements, prepared to run in a single call on the GPU machine (no network, no DVC or
# Snakemake; torch/transformers/peft its own): the configs/smollm2.yaml DAG on real GSM8K through the stage
# commands (bench/gpu_dag.py), then the generation bench, plain vs fast, on the DAG's own SmolLM2 base model
# (bench/gpu_smoke.py). Results go to $OUT as they finish. Before it, a first call installed the carried
# wheels into $SITE and left the first half of the GGUF file in $PARTS (docs/real-experiment.md).
#   bash bench/gpu_session.sh                 # on the GPU machine
#   PARAMS=... SMOKE_ARGS=... bash bench/gpu_session.sh   # a CPU rehearsal at tiny sizes
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
: "${OUT:?set OUT}" "${SITE:=/tmp/site}" "${PARTS:=/tmp/parts}" "${WORK:=/tmp/gsm8k-dag}"
: "${PARAMS:=configs/smollm2.yaml}" "${JOBS:=4}" "${DEADLINE:=300}" "${DAG_LIMIT:=400}" "${SMOKE_LIMIT:=150}"
: "${SMOKE_ARGS:=--grpo-steps 3 --grpo-prompts 8 --grpo-generations 8 --grpo-tokens 256 --prep-samples 0 --traces 0 --eval 0}"
: "${GSM8K_CACHE:=/tmp/gsm8k-cache}"
export PYTHONPATH="$SITE:$repo/src" PYTHONUNBUFFERED=1 GSM8K_CACHE HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
gguf=$GSM8K_CACHE/gguf/$sha/SmolLM2-135M-Instruct.Q4_1.gguf
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/session.log"; }

log "machine: $(nvidia-smi -L 2>/dev/null | head -1); python $(python3 -c 'import sys; print(sys.version.split()[0])')"
python3 -c 'import torch, transformers, peft, trl, datasets; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__, "trl", trl.__version__, "datasets", datasets.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tee -a "$OUT/session.log"

# The GGUF file, whole again, where the base_model stage's cache looks (pypi_model.py): the stage then runs offline.
if [ ! -f "$gguf" ]; then
    mkdir -p "$(dirname "$gguf")" && cat "$PARTS"/part* > "$gguf.tmp" && mv "$gguf.tmp" "$gguf"
fi
[ "$(sha256sum "$gguf" | cut -d' ' -f1)" = "$sha" ] || { log "GGUF sha256 mismatch"; exit 2; }

# The DAG runs in a work dir holding the checkout's DAG files, with GSM8K at ../shared/data/gsm8k as beside a checkout.
rm -rf "$WORK" && mkdir -p "$WORK/run" "$WORK/shared/data" && cd "$WORK/run"
cp -r "$repo"/{dvc.yaml,src,workflow,configs,bench} . && mkdir -p models/pretrained
cp -r "${GSM8K_DIR:-$repo/.gpu/gsm8k}" "$WORK/shared/data/gsm8k"
log "DAG: $PARAMS, $JOBS jobs, no stage starts after ${DEADLINE}s"
timeout "$DAG_LIMIT" python3 bench/gpu_dag.py --params "$PARAMS" --jobs "$JOBS" --deadline "$DEADLINE" --retry-plain \
    --out "$OUT/dag.json" 2>&1 | tee -a "$OUT/session.log"
tar -czf "$OUT/dag_outputs.tgz" --exclude='*.safetensors' --exclude='*.bin' --exclude='checkpoints' \
    metrics models data/traces data/gsm8k/stats.json logs params.yaml 2>/dev/null
log "DAG outputs: $(du -h "$OUT/dag_outputs.tgz" | cut -f1)"

# Plain against fast generation in one process, on the real model the DAG dequantised (else random weights
# of Qwen2.5-0.5B's shape, the bench's default).
model=(); [ -f models/base/model/config.json ] && model=(--model-dir models/base/model)
log "gpu_smoke: ${model[*]} $SMOKE_ARGS"
timeout "$SMOKE_LIMIT" python3 bench/gpu_smoke.py "${model[@]}" --gsm8k-dir "$WORK/shared/data/gsm8k" \
    --out "$OUT/gpu_smoke.json" $SMOKE_ARGS > "$OUT/gpu_smoke.log" 2>&1
log "gpu_smoke: rc $?"
log "done"
