#!/usr/bin/env bash
# Packs what bench/gpu_run.sh needs on the device machine into folders under .gpu/
# (git-ignored) that the device tool carries, one per call: a call carries at most 64 MiB, and
# the model's weights alone are 87 MiB of float32 that do not compress (zstd: 83 MiB).
#
#   .gpu/a   the CUDA binaries (scripts/build-cuda.sh) and the first part of model.safetensors
#   .gpu/b   the rest of the weights, the model's small files and SciFact (xz)
#   .gpu/c   Ray for the device's Python 3.12 (RAY=1 only): gpu_run.sh's `ray` section (issue 19)
#
# On the device, the first call runs `scripts/gpu-bundle.sh unpack a` and the second, within
# the machine's 30 s warm window, `scripts/gpu-bundle.sh unpack b && bench/gpu_run.sh`; a
# third may run `scripts/gpu-bundle.sh unpack c && SECTIONS=ray bench/gpu_run.sh`. All unpack
# into $STASH (default /root/stash), which lives as long as the machine stays warm.
set -euo pipefail
cd "$(dirname "$0")/.."
STASH=${STASH:-/root/stash}

if [ "${1:-pack}" = unpack ]; then
  part=${2:?unpack a, b or c}
  mkdir -p "$STASH/bin" "$STASH/model"
  case $part in
    a)
      tar -xJf .gpu/a/hyrank-cuda.tar.xz -C "$STASH/bin"
      cp .gpu/a/weights.part1 "$STASH/"
      ;;
    b)
      cat "$STASH/weights.part1" .gpu/b/weights.part2 >"$STASH/model/model.safetensors"
      (cd "$STASH/model" && sha256sum -c "$OLDPWD/.gpu/b/weights.sha256")
      rm -f "$STASH/weights.part1"
      tar -xf .gpu/b/model-files.tar -C "$STASH/model"
      tar -xJf .gpu/b/scifact.tar.xz -C "$STASH"
      ;;
    c)
      rm -rf "$STASH/ray-site"
      mkdir -p "$STASH/ray-site"
      tar -xzf .gpu/c/ray-site.tar.gz -C "$STASH/ray-site"
      ;;
  esac
  ls -la "$STASH" "$STASH/bin"
  exit 0
fi

model=models/all-MiniLM-L6-v2
data=${DATA:-../shared/data/scifact}
bundle=.gpu/bin/hyrank-cuda.tar.xz
[ -f "$bundle" ] || { echo "no $bundle: run scripts/build-cuda.sh first" >&2; exit 1; }
[ -f "$model/model.safetensors" ] || scripts/setup.sh
rm -rf .gpu/a .gpu/b
mkdir -p .gpu/a .gpu/b
cp "$bundle" .gpu/a/
# The first part takes what the binaries leave of a 60 MiB budget (the repo itself travels too).
budget=$((60 * 1024 * 1024))
first=$((budget - $(stat -c %s "$bundle")))
head -c "$first" "$model/model.safetensors" >.gpu/a/weights.part1
tail -c +"$((first + 1))" "$model/model.safetensors" >.gpu/b/weights.part2
(cd "$model" && sha256sum model.safetensors) >.gpu/b/weights.sha256
tar -cf .gpu/b/model-files.tar -C "$model" --exclude model.safetensors .
tar -cJf .gpu/b/scifact.tar.xz -C "$(dirname "$data")" --transform "s|^$(basename "$data")|scifact|" "$(basename "$data")"

# Ray and what it needs beyond the device image's packages (KINDS.md lists click, filelock,
# msgpack, packaging, protobuf, pyyaml, requests and attrs there; jsonschema is missing), for
# CPython 3.12, installed into a folder to put on PYTHONPATH. Ray's wheel is 79 MB, over one
# call's 64 MiB; 32 MB of it is ray_dist.jar, which only Java workers load, so it is left out.
rm -rf .gpu/c
if [ "${RAY:-0}" = 1 ]; then
  rm -rf .gpu/ray-wheels  # one version of each: a stale wheel beside a new one breaks the install
  mkdir -p .gpu/c .gpu/ray-wheels
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .gpu/ray-wheels \
    ray==2.60.0 jsonschema==4.25.1 jsonschema-specifications==2025.9.1 referencing==0.36.2 rpds-py==0.27.1
  site=$(mktemp -d)
  python3 -m pip install -q --no-deps --no-compile --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --target "$site" .gpu/ray-wheels/*.whl
  rm -rf "$site/ray/jars" "$site/bin"
  tar -czf .gpu/c/ray-site.tar.gz -C "$site" .
  rm -rf "$site"
fi
du -sh .gpu/?
du -sh .gpu/?/*
