//! Which device runs the transformer. An explicit CUDA request in a build without the `cuda`
//! feature, or on a machine without a GPU, is an error: users must never get silent CPU
//! inference when they asked for a GPU.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The device the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA device 0 when compiled in and present, else CPU; the choice is logged.
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
    /// This CUDA device; an error if unavailable.
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceChoice::Cuda(n)),
                _ => Err(Error::invalid("device", format!("{s:?} is not one of auto, cpu, cuda, cuda:N"))),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// Resolves the choice to a candle device.
    pub fn resolve(self) -> Result<candle_core::Device> {
        match self {
            DeviceChoice::Cpu => Ok(candle_core::Device::Cpu),
            DeviceChoice::Cuda(ordinal) => cuda_device(ordinal),
            DeviceChoice::Auto => {
                if cfg!(feature = "cuda") && candle_core::utils::cuda_is_available() {
                    match cuda_device(0) {
                        Ok(device) => {
                            tracing::info!("device auto: using cuda:0");
                            return Ok(device);
                        }
                        Err(e) => tracing::warn!("device auto: cuda:0 failed ({e}), using cpu"),
                    }
                } else {
                    tracing::info!(cuda_compiled = cfg!(feature = "cuda"), "device auto: using cpu");
                }
                Ok(candle_core::Device::Cpu)
            }
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(ordinal: usize) -> Result<candle_core::Device> {
    // TF32 products for f32 (10-bit mantissas, f32 sums) on every cuBLAS call of the process:
    // a measurement switch (bench/gpu_run.sh), off by default as in PyTorch.
    if std::env::var("HYRANK_GPU_TF32").as_deref() == Ok("1") {
        tracing::warn!("HYRANK_GPU_TF32=1: f32 matrix products at TF32");
        candle_core::cuda::set_gemm_reduced_precision_f32(true);
    }
    candle_core::Device::new_cuda(ordinal)
        .map_err(|e| Error::DeviceUnavailable { requested: format!("cuda:{ordinal}"), reason: e.to_string() })
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(ordinal: usize) -> Result<candle_core::Device> {
    Err(Error::DeviceUnavailable {
        requested: format!("cuda:{ordinal}"),
        reason: "this build has no CUDA support; rebuild with `--features cuda`".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        assert_eq!("auto".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        assert_eq!("CPU".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!("cuda".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(3));
        assert!("gpu".parse::<DeviceChoice>().is_err());
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn explicit_cuda_without_the_feature_is_an_error_not_a_cpu_fallback() {
        let err = DeviceChoice::Cuda(0).resolve().unwrap_err();
        assert!(err.to_string().contains("--features cuda"), "{err}");
    }
}
