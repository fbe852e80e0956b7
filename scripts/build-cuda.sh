#!/usr/bin/env bash
# Builds CUDA-enabled release binaries (hyrank, hyrank-serve) on a machine WITHOUT a GPU and
# without a CUDA toolkit, for a GPU machine with an NVIDIA driver for CUDA 13.0 (H200, sm_90).
#
#   scripts/build-cuda.sh            # everything: toolkit, stubs, build, package, self-test
#
# What it does, each step idempotent (re-running skips what is already there):
#   1. downloads the CUDA 13.0 compiler wheels from PyPI and assembles a CUDA_HOME in
#      .gpu/cuda-13.0 (bin/nvcc, nvvm/, include/, lib64/), then self-tests nvcc;
#   2. generates link-time STUB libraries (.gpu/stubs) for the libraries cudarc links
#      (libcuda, libnvrtc, libcublas, libcublasLt, libcurand): every stubbed call fails, so
#      a stub can never pretend a GPU exists; they exist only so the linker can resolve names;
#   3. builds with `--features cuda` into target/cuda;
#   4. strips and packs the binaries into .gpu/bin/hyrank-cuda.tar.xz;
#   5. self-tests the binaries here (the CUDA device must fail cleanly, CPU must pass).
#
# On the GPU machine the binaries need, on the loader path, the real libcuda.so.1 (driver)
# and libnvrtc.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libcudart.so.13
# (PyTorch's cu13 wheels ship them in site-packages/nvidia/cu13/lib). Never ship .gpu/stubs.
#
# Knobs: CUDA_COMPUTE_CAP (default 90 = H200/H100), HYRANK_CARGO_LOCK (default
# /tmp/hyrank-cargo.lock), HYRANK_NO_WAIT=1 to skip waiting for other cargo/rustc processes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# All generated files live under .gpu/ (git-ignored); nothing outside it is written except
# the cargo target dir target/cuda (also git-ignored).
GPU=$ROOT/.gpu
WHEELS=$GPU/wheels
CUDA_HOME_DIR=$GPU/cuda-13.0
STUBS=$GPU/stubs
OUTBIN=$GPU/bin
TARGET_DIR=$ROOT/target/cuda
# The machine is shared (2 cores): every cargo command goes through one lock.
LOCK=${HYRANK_CARGO_LOCK:-/tmp/hyrank-cargo.lock}
# H200 = compute capability 9.0. cudaforge (candle-kernels' build helper) turns "90" into
# sm_90a; without this variable it would call nvidia-smi, which does not exist here.
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'build-cuda: ERROR: %s\n' "$*" >&2; exit 1; }

for tool in python3 gcc readelf strip xz flock cargo unzip; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
mkdir -p "$WHEELS" "$CUDA_HOME_DIR" "$STUBS" "$OUTBIN"

# ---------------------------------------------------------------------------------------
# 1. CUDA 13.0 toolkit from PyPI wheels.
# Pinned to 13.0.x on purpose: nvcc emits PTX with the ISA version of its own release, and a
# CUDA 13.0 driver (580.x) refuses PTX from a newer nvcc (CUDA_ERROR_UNSUPPORTED_PTX_VERSION).
# ---------------------------------------------------------------------------------------
say "1/5 CUDA 13.0 toolkit (pip wheels) -> $CUDA_HOME_DIR"
WHEEL_SPECS=(
  nvidia-cuda-nvcc==13.0.88     # nvcc, ptxas, fatbinary, nvlink, cudafe++
  nvidia-cuda-crt==13.0.88      # include/crt/*.h (host_config.h ...): nvcc fails without them
  nvidia-nvvm==13.0.88          # nvvm/bin/cicc + libdevice: the CUDA C++ -> PTX front end
  nvidia-cuda-cccl==13.0.85     # include/cccl (cub, thrust, libcu++) that nvcc.profile adds
  nvidia-cuda-runtime==13.0.96  # cuda_runtime.h, cuda_fp16/bf16/fp8.h, libcudart.so.13
)
# The wheels carry different manylinux tags (2010/2014/2_27); list them all so the download
# works the same from any x86-64 host. --no-deps: we want exactly these files.
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64)
for spec in "${WHEEL_SPECS[@]}"; do
  name=${spec%%==*}; ver=${spec##*==}
  # Wheel file names use underscores: nvidia_cuda_nvcc-13.0.88-py3-none-....whl
  if compgen -G "$WHEELS/${name//-/_}-${ver}-*.whl" >/dev/null; then
    echo "have $spec"
  else
    echo "download $spec"
    python3 -m pip download --quiet --no-deps --only-binary=:all: "${PLATFORMS[@]}" \
      --python-version 3.11 -d "$WHEELS" "$spec"
  fi
done

# Every wheel keeps its payload under nvidia/cu13/ (bin, include, lib, nvvm): merging them
# gives the layout of a normal toolkit install. A stamp per wheel makes this a no-op later.
for whl in "$WHEELS"/*.whl; do
  stamp=$CUDA_HOME_DIR/.unpacked-$(basename "$whl" .whl)
  [ -f "$stamp" ] && continue
  echo "unpack $(basename "$whl")"
  tmp=$(mktemp -d)
  unzip -q -o "$whl" 'nvidia/cu13/*' -d "$tmp"
  cp -a "$tmp/nvidia/cu13/." "$CUDA_HOME_DIR/"
  rm -rf "$tmp"
  touch "$stamp"
done
# Zip extraction normally keeps the executable bits; make sure, the build dies without them.
chmod +x "$CUDA_HOME_DIR"/bin/* "$CUDA_HOME_DIR"/nvvm/bin/* 2>/dev/null || true
# nvcc.profile looks for headers and libraries under $(TOP)/targets/x86_64-linux/ and cargo
# build scripts (cudarc, cudaforge) under lib64/: point both at the wheels' include/ and lib/.
mkdir -p "$CUDA_HOME_DIR/targets/x86_64-linux"
ln -sfn lib "$CUDA_HOME_DIR/lib64"
ln -sfn ../../include "$CUDA_HOME_DIR/targets/x86_64-linux/include"
ln -sfn ../../lib "$CUDA_HOME_DIR/targets/x86_64-linux/lib"
# The wheel ships only libcudart.so.13; the linker (-lcudart, from candle-kernels) wants
# the unversioned name. This is the REAL runtime library, not a stub: linking against it
# records the SONAME libcudart.so.13 that the GPU machine provides.
ln -sfn libcudart.so.13 "$CUDA_HOME_DIR/lib/libcudart.so"

export CUDA_HOME=$CUDA_HOME_DIR CUDA_PATH=$CUDA_HOME_DIR
export PATH=$CUDA_HOME_DIR/bin:$PATH
# Self-test: nvcc must report 13.0 and produce sm_90 PTX (cicc + crt headers) and an sm_90a
# object (cudafe++, host gcc, ptxas, fatbinary): candle-kernels needs both kinds of output.
nvcc --version | tail -2
grep -q 'release 13\.0,' <<<"$(nvcc --version)" || die "nvcc is not CUDA 13.0"
selftest=$(mktemp -d)
cat >"$selftest/t.cu" <<'CU'
#include <cuda_fp16.h>
#include <cuda_bf16.h>
extern "C" __global__ void axpy(float a, const float *x, float *y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}
CU
nvcc -arch=sm_90 --ptx -std=c++17 -O3 "$selftest/t.cu" -o "$selftest/t.ptx" \
  || die "nvcc could not compile a .cu file to PTX"
grep -E '^\.(version|target)' "$selftest/t.ptx" | tr '\n' ' '; echo
grep -q '^\.target sm_90' "$selftest/t.ptx" || die "PTX does not target sm_90"
nvcc -gencode=arch=compute_90a,code=sm_90a -c -Xcompiler -fPIC "$selftest/t.cu" -o "$selftest/t.o" \
  || die "nvcc could not compile a .cu file to an sm_90a object"
echo "nvcc self-test ok (PTX + sm_90a object)"
rm -rf "$selftest"

# ---------------------------------------------------------------------------------------
# 2. Link-time stubs for the libraries cudarc links.
# candle-core enables cudarc's `dynamic-linking`: its build.rs emits -lcuda -lnvrtc -lcurand
# -lcublas -lcublasLt (the `runtime` feature, i.e. -lcudart, is off), so the linker must see
# those libraries. The symbols come from cudarc's generated sys bindings, keeping only the
# functions compiled for CUDA 13.0 (their #[cfg(any(feature = "cuda-13000", ...))] line).
# ---------------------------------------------------------------------------------------
say "2/5 link-time stub libraries -> $STUBS"
# Sources of the cudarc version in Cargo.lock; fetched only when missing (the lock can be
# held for many minutes by someone else's build).
CUDARC_VERSION=$(awk '/^name = "cudarc"$/ { getline; gsub(/version = |"/, ""); print }' Cargo.lock)
[ -n "$CUDARC_VERSION" ] || die "cudarc is not in Cargo.lock"
find_cudarc() { ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"cudarc-$CUDARC_VERSION" 2>/dev/null | head -1 || true; }
CUDARC_SRC=$(find_cudarc)
if [ -z "$CUDARC_SRC" ]; then
  flock "$LOCK" cargo fetch --locked --quiet
  CUDARC_SRC=$(find_cudarc)
fi
[ -d "$CUDARC_SRC/src" ] || die "cudarc-$CUDARC_VERSION sources not found"
echo "symbols from $CUDARC_SRC"

# lib  : name the linker looks for (-l<lib>)
# so   : SONAME of the real CUDA 13.0 library (checked with readelf -d on the 13.0 wheels for
#        nvrtc, curand, cudart; libcuda.so.1 is the driver's; cublas(Lt) follow .so.13)
# dir  : cudarc module whose sys bindings declare the functions
# err  : the error every stubbed call returns; it must be a variant of the Rust enum the
#        binding returns (anything else would be undefined behaviour in Rust)
STUB_TABLE=(
  "cuda      libcuda.so.1       driver    CUDA_ERROR_STUB_LIBRARY=34"
  "nvrtc     libnvrtc.so.13     nvrtc     NVRTC_ERROR_INTERNAL_ERROR=11"
  "cublas    libcublas.so.13    cublas    CUBLAS_STATUS_NOT_INITIALIZED=1"
  "cublasLt  libcublasLt.so.13  cublaslt  CUBLAS_STATUS_NOT_INITIALIZED=1"
  "curand    libcurand.so.10    curand    CURAND_STATUS_INITIALIZATION_FAILED=203"
)
for row in "${STUB_TABLE[@]}"; do
  read -r lib soname dir err <<<"$row"
  sys=$CUDARC_SRC/src/$dir/sys/mod.rs
  grep -q "    ${err%%=*} = ${err##*=}," "$sys" || die "$err is not a variant in $sys"
  c=$STUBS/$lib.c
  # Regenerate when cudarc changes (the C file records where its symbols came from).
  if [ ! -f "$STUBS/$soname" ] || ! grep -qF "from $sys" "$c" 2>/dev/null; then
    python3 - "$sys" "$soname" "${err##*=}" "${err%%=*}" >"$c" <<'PY'
import re, sys
path, soname, code, code_name = sys.argv[1:5]
lines = open(path).read().split("\n")
msg = (f"hyrank link-time stub {soname} (.gpu/stubs): no CUDA library or GPU here; "
       f"put the real CUDA 13.0 libraries on LD_LIBRARY_PATH")
out = [f"/* Generated by scripts/build-cuda.sh from {path}",
       f" * LINK-TIME STUB for {soname}: every function fails ({code_name} = {code}).",
       " * Never install or ship this library. */",
       "#include <stddef.h>",
       f'static const char MSG[] = "{msg}";']
n = 0
for i, line in enumerate(lines):
    m = re.match(r"pub unsafe fn (\w+)\((.*)\)(?: -> (.+?))? \{$", line)
    if not m:
        continue
    prev = lines[i - 1]
    if prev.startswith("#[cfg(") and '"cuda-13000"' not in prev:
        continue  # not part of the CUDA 13.0 API
    name, ret = m.group(1), (m.group(3) or "void")
    n += 1
    if name in ("cuGetErrorString", "cuGetErrorName"):
        # Lets cudarc print *why* it failed instead of "<Failure when calling
        # cuGetErrorString()>"; it reports an error text, never a device.
        out.append(f"int {name}(int e, const char **s) {{ (void)e; if (s) *s = MSG; return 0; }}")
    elif ret.startswith("*const"):      # ...GetErrorString / GetStatusName: a message
        out.append(f"const char *{name}(void) {{ return MSG; }}")
    elif ret == "usize":                 # ...GetVersion / GetCudartVersion: "no version"
        out.append(f"size_t {name}(void) {{ return 0; }}")
    elif ret == "void":
        out.append(f"void {name}(void) {{ }}")
    else:                                # status enums: fail
        out.append(f"int {name}(void) {{ return {code}; }}")
if n == 0:
    sys.exit(f"no functions found in {path}")
print("\n".join(out))
PY
    # -soname: the binary's NEEDED entry becomes the real library's SONAME, so at run time
    # the loader picks up the real library on the GPU machine. No symbol versions: an
    # unversioned reference binds to the real library's default version.
    gcc -shared -fPIC -O1 -Wl,-soname,"$soname" -Wl,--no-undefined -o "$STUBS/$soname" "$c"
    ln -sfn "$soname" "$STUBS/lib$lib.so"
    echo "built $soname ($(grep -c '^[a-z].*) {' "$c") functions)"
  else
    echo "have $soname"
  fi
done

# ---------------------------------------------------------------------------------------
# 3. Build.
# cudarc (feature cuda-version-from-build-system) would parse `nvcc --version`; pin the
# version explicitly so the build cannot silently follow another nvcc on PATH.
# ---------------------------------------------------------------------------------------
say "3/5 cargo build --features cuda -> $TARGET_DIR"
export CUDARC_CUDA_VERSION=13000
# cudaforge runs its nvcc jobs on its own thread pool (default: half the cores); with
# cargo -j 2 that keeps the shared 2-core machine at about 2 busy processes.
export CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-1}
# cudarc/cudaforge add -L $CUDA_HOME/lib64 (real libcudart); the stubs come from -L .gpu/stubs.
# RUNPATH $ORIGIN: the bundle carries libcudart.so.13 next to the binaries (candle-kernels
# links it), so the GPU machine needs only the driver and cuBLAS/cuRAND/NVRTC on its path.
export RUSTFLAGS="${RUSTFLAGS:-} -L native=$STUBS -C link-arg=-Wl,-rpath,\$ORIGIN"

# Other people build on this machine, not always through the lock: wait until no cargo
# build/test or rustc runs (or waits on the lock) before starting ours.
if [ "${HYRANK_NO_WAIT:-0}" != 1 ]; then
  while others=$(pgrep -a -f '(^|[/ ])(cargo (build|test)|rustc) ' | grep -v "^$$ " || true); [ -n "$others" ]; do
    echo "waiting for other builds to finish ($(wc -l <<<"$others") cargo/rustc processes) ..."
    sleep 30
  done
fi
t0=$(date +%s)
flock "$LOCK" cargo build --release --locked -j 2 --features cuda \
  -p hyrank-indexer -p hyrank-api --bin hyrank --bin hyrank-serve \
  --target-dir "$TARGET_DIR"
echo "cargo build took $(( $(date +%s) - t0 )) s"

# ---------------------------------------------------------------------------------------
# 4. Package: stripped binaries + one tarball (the only thing that travels).
# ---------------------------------------------------------------------------------------
say "4/5 package -> $OUTBIN"
for b in hyrank hyrank-serve; do
  install -m 755 "$TARGET_DIR/release/$b" "$OUTBIN/$b"
  strip "$OUTBIN/$b"
done
# candle-kernels links libcudart (its MoE kernels use the runtime API). Ship the real 13.0
# runtime (0.7 MB) beside the binaries, where their RUNPATH ($ORIGIN) finds it.
files=(hyrank hyrank-serve)
rm -f "$OUTBIN/libcudart.so.13"
# Read the whole listing first: `readelf | grep -q` under pipefail fails whenever grep exits
# before readelf has written everything (SIGPIPE), and the bundle then ships without the runtime.
needed=$(readelf -d "$OUTBIN/hyrank" "$OUTBIN/hyrank-serve")
if grep -q 'NEEDED.*\[libcudart\.so\.13\]' <<<"$needed"; then
  install -m 644 "$CUDA_HOME_DIR/lib/libcudart.so.13" "$OUTBIN/libcudart.so.13"
  files+=(libcudart.so.13)
fi
rm -f "$OUTBIN/hyrank-cuda.tar.xz"
tar -C "$OUTBIN" -cf - "${files[@]}" | xz -9 -T2 >"$OUTBIN/hyrank-cuda.tar.xz"
echo "bundle contents:"; tar -tvJf "$OUTBIN/hyrank-cuda.tar.xz"
ls -l "$TARGET_DIR/release/hyrank" "$TARGET_DIR/release/hyrank-serve" \
  "$OUTBIN/hyrank" "$OUTBIN/hyrank-serve" "$OUTBIN/hyrank-cuda.tar.xz"
echo "bundle: $(stat -c %s "$OUTBIN/hyrank-cuda.tar.xz" | numfmt --to=iec-i --suffix=B --format=%.1f) compressed (xz -9)"
echo "NEEDED by hyrank:"
readelf -d "$OUTBIN/hyrank" | grep NEEDED
# What the GPU machine's glibc / libstdc++ must provide at least.
echo "newest symbol versions required: $(objdump -T "$OUTBIN/hyrank" | grep -oE 'GLIBC_[0-9.]+' | sort -Vu | tail -1)" \
     "$(objdump -T "$OUTBIN/hyrank" | grep -oE 'GLIBCXX_[0-9.]+' | sort -Vu | tail -1)"

# ---------------------------------------------------------------------------------------
# 5. Self-test here. The stubs stand in for the driver and CUDA libraries; libcudart.so.13 is
# the real one beside the binaries (it needs no GPU until it is called).
# ---------------------------------------------------------------------------------------
say "5/5 self-test with LD_LIBRARY_PATH=.gpu/stubs"
export LD_LIBRARY_PATH=$STUBS
(cd "$OUTBIN" && ldd ./hyrank | grep -E 'cuda|nvrtc|cublas|curand|not found')
"$OUTBIN/hyrank" --help >/dev/null && echo "hyrank --help: ok"
"$OUTBIN/hyrank-serve" --help >/dev/null && echo "hyrank-serve --help: ok"
"$OUTBIN/hyrank" check-model --help >/dev/null && echo "hyrank check-model --help: ok"
model=models/all-MiniLM-L6-v2 golden=fixtures/golden_embeddings.json
if [ -f "$model/model.safetensors" ]; then
  # CUDA must fail with an error (stub driver), not crash and not fall back to the CPU.
  set +e
  out=$("$OUTBIN/hyrank" check-model --model-dir "$model" --device cuda --golden "$golden" 2>&1)
  rc=$?
  set -e
  echo "$out"
  echo "--device cuda exit status: $rc"
  [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || die "--device cuda should fail cleanly (exit 1..127), got $rc"
  grep -q 'CUDA_ERROR_STUB_LIBRARY' <<<"$out" || die "--device cuda did not report the stub driver"
  ! grep -q 'worst cosine' <<<"$out" || die "--device cuda computed embeddings (CPU fallback?)"
  "$OUTBIN/hyrank" check-model --model-dir "$model" --device cpu --golden "$golden"
  echo "--device cpu: ok"
else
  echo "skip check-model runs: $model missing (run scripts/setup.sh)"
fi
say "done: $OUTBIN/hyrank-cuda.tar.xz"
