//! Numeric precision: of a model's weights for inference
//! ([`crate::blip::BlipForConditionalGeneration::set_precision`]), and of
//! mixed-precision training through libtorch's own autocast
//! ([`Autocast`]), which is what `torch.autocast` switches on: inside it,
//! matrix products and convolutions run in bf16 or fp16 while the ops on
//! libtorch's fp32 list (softmax, log-softmax, norms, losses) run in fp32;
//! the weights themselves stay fp32.

use std::fmt;
use std::os::raw::c_int;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use crate::error::ModelError;
use crate::ffi;

/// A floating-point precision, named as in configuration files and
/// command lines (`fp32`, `bf16`, `fp16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Precision {
    /// fp32 everywhere (the parity setting).
    #[default]
    #[serde(rename = "fp32")]
    F32,
    /// bfloat16: fp32's exponent range with 8 bits of mantissa.
    #[serde(rename = "bf16")]
    Bf16,
    /// IEEE half precision: 11 bits of mantissa but a range that ends at
    /// 65504, so training needs loss scaling.
    #[serde(rename = "fp16")]
    F16,
}

impl Precision {
    /// libtorch's element type.
    pub fn kind(self) -> Kind {
        match self {
            Self::F32 => Kind::Float,
            Self::Bf16 => Kind::BFloat16,
            Self::F16 => Kind::Half,
        }
    }

    /// The name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "fp32",
            Self::Bf16 => "bf16",
            Self::F16 => "fp16",
        }
    }

    /// c10's `ScalarType` code (stable across libtorch releases).
    fn scalar_type(self) -> c_int {
        match self {
            Self::F32 => 6,
            Self::Bf16 => 15,
            Self::F16 => 5,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A precision name that is not `fp32`, `bf16` or `fp16`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision `{0}`: expected fp32, bf16 or fp16")]
pub struct UnknownPrecision(pub String);

impl FromStr for Precision {
    type Err = UnknownPrecision;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "f32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            "fp16" | "f16" | "float16" | "half" => Ok(Self::F16),
            _ => Err(UnknownPrecision(s.to_owned())),
        }
    }
}

/// Mixed precision on one device while the guard lives, as
/// `with torch.autocast(device_type, dtype):` in PyTorch. Dropping it
/// restores the state it found (guards nest). Autocast state is per
/// thread in libtorch: run the forward pass on the thread that made the
/// guard, and the backward pass after it is dropped, as PyTorch advises.
///
/// ```
/// use medcap_model::precision::{Autocast, Precision};
/// use medcap_model::tch::{Device, Kind, Tensor};
///
/// let a = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
/// let b = Tensor::ones([3, 2], (Kind::Float, Device::Cpu));
/// {
///     let _autocast = Autocast::enter(Device::Cpu, Precision::Bf16)?;
///     assert_eq!(a.matmul(&b).kind(), Kind::BFloat16);
///     // Reductions stay fp32, as on libtorch's fp32 list.
///     assert_eq!(a.log_softmax(-1, None).kind(), Kind::Float);
/// }
/// assert_eq!(a.matmul(&b).kind(), Kind::Float);
/// # Ok::<(), medcap_model::ModelError>(())
/// ```
#[must_use = "autocast ends when the guard is dropped"]
pub struct Autocast {
    /// Device type code and the state to restore; `None` for fp32 (a no-op).
    restore: Option<(c_int, bool, c_int)>,
}

impl Autocast {
    /// Turns autocast on for `device`'s type at `precision`; fp32 gives a
    /// guard that changes nothing.
    ///
    /// # Errors
    /// [`ModelError::Autocast`] when libtorch refuses (an unsupported
    /// device type or dtype).
    pub fn enter(device: Device, precision: Precision) -> Result<Self, ModelError> {
        if precision == Precision::F32 {
            return Ok(Self { restore: None });
        }
        let refused = || ModelError::Autocast { device, precision };
        let code = match device {
            Device::Cpu => 0,
            Device::Cuda(_) => 1,
            _ => return Err(refused()),
        };
        let (was_enabled, was_dtype) = ffi::autocast_state(code).ok_or_else(refused)?;
        if !ffi::autocast_set(code, true, precision.scalar_type()) {
            return Err(refused());
        }
        if !ffi::autocast_enter() {
            ffi::autocast_set(code, was_enabled, was_dtype);
            return Err(refused());
        }
        Ok(Self {
            restore: Some((code, was_enabled, was_dtype)),
        })
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        if let Some((code, enabled, dtype)) = self.restore {
            ffi::autocast_exit();
            ffi::autocast_set(code, enabled, dtype);
        }
    }
}

/// Peak bytes held by tensors on `device` since the last
/// [`reset_peak_memory`] (PyTorch's `torch.cuda.max_memory_allocated`);
/// `None` on the CPU, which has no such counter (read the process's peak
/// resident memory instead), or when CUDA is not initialised.
pub fn peak_memory(device: Device) -> Option<u64> {
    match device {
        Device::Cuda(index) => ffi::cuda_peak_allocated(c_int::try_from(index).ok()?),
        _ => None,
    }
}

/// Starts a new peak for [`peak_memory`]; false on the CPU or without CUDA.
pub fn reset_peak_memory(device: Device) -> bool {
    match device {
        Device::Cuda(index) => c_int::try_from(index).is_ok_and(ffi::cuda_reset_peak),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tch::Tensor;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for p in [Precision::F32, Precision::Bf16, Precision::F16] {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.name()));
            assert_eq!(serde_json::from_str::<Precision>(&json).unwrap(), p);
        }
        let err = "fp8".parse::<Precision>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown precision `fp8`: expected fp32, bf16 or fp16"
        );
    }

    #[test]
    fn autocast_casts_matrix_products_only_while_the_guard_lives_and_nests() {
        let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
        let linear = |x: &Tensor| x.linear(&a, None::<Tensor>);
        assert_eq!(linear(&a).kind(), Kind::Float);
        {
            let _outer = Autocast::enter(Device::Cpu, Precision::Bf16).unwrap();
            assert_eq!(linear(&a).kind(), Kind::BFloat16);
            {
                let _inner = Autocast::enter(Device::Cpu, Precision::F16).unwrap();
                assert_eq!(linear(&a).kind(), Kind::Half);
                let _off = Autocast::enter(Device::Cpu, Precision::F32).unwrap();
                assert_eq!(linear(&a).kind(), Kind::Half);
            }
            // The outer guard's dtype is back.
            assert_eq!(linear(&a).kind(), Kind::BFloat16);
            // Element-wise ops are not cast; the weights keep their type.
            assert_eq!((&a + 1.0).kind(), Kind::Float);
        }
        assert_eq!(linear(&a).kind(), Kind::Float);
    }

    #[test]
    fn there_is_no_peak_counter_on_the_cpu() {
        assert_eq!(peak_memory(Device::Cpu), None);
        assert!(!reset_peak_memory(Device::Cpu));
    }
}
