#!/usr/bin/env bash
# Download, here, the wheels `scripts/gpu_check.sh` needs that the device image lacks (its
# package list: /work/.library/device/KINDS.md), at constraints.txt's pins, into .whl/
# (git-ignored). The device call then carries `.whl`. Python 3.12, manylinux x86-64.
set -euo pipefail
cd "$(dirname "$0")/.."
# wandb (20 MB) stays behind: the check logs to CSV, and the carried tree must stay < 64 MiB.
NEEDED=(jsonargparse docstring_parser typeshed_client omegaconf platformdirs librosa audioread
  soxr pooch decorator soundfile av kornia kornia_rs)
mkdir -p .whl
for name in "${NEEDED[@]}"; do
  key=$(echo "$name" | tr 'A-Z_' 'a-z-')
  pin=$(grep -i -E "^${key}==|^${name}==" constraints.txt | head -1 || true)
  [ -n "$pin" ] || { echo "gpu_wheels: $name is not pinned in constraints.txt: skipped" >&2; continue; }
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 --platform any -d .whl "$pin"
done
du -sh .whl
