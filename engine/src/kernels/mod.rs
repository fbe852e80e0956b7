//! hyrank's own CPU arithmetic for the transformer: a matrix product against weights packed once
//! at load time, and the element-wise functions BERT needs (erf GELU, softmax's exponential,
//! layer norm), written so the compiler vectorises them.
//!
//! Why not candle's CPU path: it calls the `gemm` crate, which packs the weight matrix again on
//! every call. For a batch of 64 abstracts that is amortised; for one 10-token query it is most
//! of the work (a profile of the query path: gemm 47%, of which packing dominates, scalar `erf`
//! 7%, scalar `exp` 6%, and a thread fan-out per operation). Here the weights are packed once
//! into panels of [`PANEL`] output columns, so a product streams each weight exactly once per
//! block of rows, and the bias and GELU run on the output while it is still in cache.
//!
//! Split by question: [`matmul`] (packed weights and the product), [`math`] (the element-wise
//! functions), [`attention`] (scaled dot-product attention on the product's tile), [`int8`] (the
//! integer products of `Format::Int8` and `Format::W8A8`).
//!
//! The microkernel is the classic 6 × 16 register tile (twelve 8-lane accumulators) in AVX2 with
//! FMA, and where [`wide`] holds (AVX-512 F and BW) a 12 × 32 tile (twenty-four 16-lane
//! accumulators over two panels) for the f32 and f16 products and attention's, and for the int8
//! ones where VNNI is present too; chosen at run time. Other CPUs run the same loops in
//! portable Rust. Rows are split into blocks and output columns into chunks over rayon's pool,
//! the pool every other stage uses, and a product too small to pay for the fan-out runs on the
//! calling thread. For the length of one transformer pass the pool's idle threads stay awake
//! to take its forks ([`awake`]).

use std::sync::OnceLock;

/// Output columns per packed panel: two 8-lane AVX2 registers.
pub(crate) const PANEL: usize = 16;
/// Rows per tile of the 256-bit and portable microkernels.
pub(crate) const TILE_ROWS: usize = 6;
/// Multiply-adds below which a product stays on the calling thread (a fan-out costs a few µs).
pub(crate) const SERIAL_MACS: usize = 1 << 19;
/// The same for a layer's attention (`Σ len² · hidden`), lower: it spends more per
/// multiply-add (packing, softmax), and run on one thread it also leaves the other threads
/// idle long enough to fall asleep before the next product. Splitting a 21-token query's
/// heads over 2 threads took its encode from 4.3 to 3.5–3.9 ms (criterion, 2 threads, two
/// runs each, 2026-12-02, with a temporary switch between the two limits that the tree does
/// not keep).
pub(crate) const SERIAL_ATTENTION_MACS: usize = 1 << 15;

/// The instruction set the kernels run on, detected once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// x86-64 with AVX2, FMA and F16C (every CPU with AVX2 since 2013 has all three).
    Avx2,
    /// Anything else: portable loops.
    Portable,
}

/// The best instruction set this CPU offers the kernels.
pub(crate) fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            return Isa::Avx2;
        }
        Isa::Portable
    })
}

/// Rows per tile of the 512-bit products (f32 and int8): `2 × 12` accumulators of 16 lanes, two
/// panels' worth, leave 8 of the 32 registers for the panels' step and the broadcast.
pub(crate) const WIDE_ROWS: usize = 12;
/// Panels per tile of the 512-bit products.
pub(crate) const WIDE_PANELS: usize = 2;

/// Rows and panels per tile for a block of `rows` rows: on the 512-bit tiles ([`wide`]) up to
/// [`WIDE_ROWS`], spread evenly (21 rows run as 11 + 10, not 12 + 9 or 6 + 6 + 6 + 3), by
/// [`WIDE_PANELS`]; elsewhere [`TILE_ROWS`] by one.
pub(crate) fn tile_shape(rows: usize, wide: bool) -> (usize, usize) {
    if wide {
        (rows.max(1).div_ceil(rows.max(1).div_ceil(WIDE_ROWS)), WIDE_PANELS)
    } else {
        (TILE_ROWS, 1)
    }
}

/// Whether a comparison switch (`HYRANK_NO_AVX512`, `HYRANK_NO_VNNI`, `HYRANK_NO_HELPERS`)
/// is set to `1`; callers read it once.
pub(crate) fn switched_off(variable: &str) -> bool {
    std::env::var(variable).is_ok_and(|v| v == "1")
}

/// Whether the products run their 512-bit tiles (12 rows × two panels): AVX-512F and BW on an
/// x86-64 CPU, unless `HYRANK_NO_AVX512=1` asks for the 256-bit ones (for comparisons).
pub(crate) fn wide() -> bool {
    static WIDE: OnceLock<bool> = OnceLock::new();
    *WIDE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if isa() == Isa::Avx2 && !switched_off("HYRANK_NO_AVX512") {
            return std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw");
        }
        false
    })
}

/// Runs `body` compiled for AVX-512 (F and BW) where [`wide`] holds, else for AVX2 and FMA where
/// the CPU has them, else portable: the element-wise loops are written plainly and vectorise
/// only when the compiler may use those instructions.
macro_rules! vectorised {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) $(-> $ret)? {
            // The body is generic over how `a·b + c` is computed (`math::MulAdd`): fused in
            // the AVX2 + FMA instance, separate in the portable one.
            #[inline(always)]
            fn body<M: $crate::kernels::math::MulAdd>($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                body::<$crate::kernels::math::Fused>($($arg),*)
            }
            // The same body compiled for AVX-512 as well: 16 lanes per register instead of 8,
            // which halves GELU's, the layer norm's and absmax's instructions on the 512-bit
            // tiles' CPUs.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,avx512f,avx512bw")]
            unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                body::<$crate::kernels::math::Fused>($($arg),*)
            }
            match isa() {
                // SAFETY: `wide()` saw AVX-512 F and BW on this CPU, `isa()` AVX2 and FMA.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 if $crate::kernels::wide() => unsafe { avx512($($arg),*) },
                // SAFETY: `isa()` saw AVX2 and FMA on this CPU.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { avx2($($arg),*) },
                _ => body::<$crate::kernels::math::Separate>($($arg),*),
            }
        }
    };
}

mod attention;
mod awake;
mod int8;
mod math;
mod matmul;

pub(crate) use attention::attend;
pub(crate) use awake::{awake, refusing_helpers};
pub(crate) use int8::MAX_INT8_K;
pub(crate) use math::{dot, dot_i8, layer_norm};
pub(crate) use matmul::{matmul, Epilogue, Format, Packed};

/// What the tests of every part share: inputs and references computed by the definitions.
#[cfg(test)]
mod testing {
    /// `x·Wᵀ + b` by the definition, in f64.
    pub(crate) fn naive(x: &[f32], weight: &[f32], bias: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|kk| x[i * k + kk] as f64 * weight[j * k + kk] as f64).sum();
                out[i * n + j] = (dot + bias[j] as f64) as f32;
            }
        }
        out
    }

    /// The tiles this CPU runs, as the `on_wide` argument of the kernels' `_on` forms: the
    /// 256-bit (or portable) ones, and the 512-bit ones where [`super::wide`] holds.
    pub(crate) fn widths() -> impl Iterator<Item = bool> {
        [false, true].into_iter().filter(|&on_wide| !on_wide || super::wide())
    }

    pub(crate) fn values(len: usize, seed: u32) -> Vec<f32> {
        // A fixed pseudo-random sequence in [−1, 1).
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    pub(crate) fn assert_close(ours: &[f32], reference: &[f32], tolerance: f32) {
        assert_eq!(ours.len(), reference.len());
        for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
            assert!((a - b).abs() <= tolerance * (1.0 + b.abs()), "index {i}: {a} vs {b}");
        }
    }

    /// erf by its Maclaurin series (|x| ≤ 3) or its asymptotic tail, in f64.
    pub(crate) fn erf_reference(x: f64) -> f64 {
        if x.abs() > 3.0 {
            let z = x.abs();
            let tail = (-z * z).exp() / (z * std::f64::consts::PI.sqrt())
                * (1.0 - 1.0 / (2.0 * z * z) + 3.0 / (4.0 * z.powi(4)));
            return (1.0 - tail).copysign(x);
        }
        let (mut term, mut sum) = (x, x);
        for n in 1..80 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }
}
