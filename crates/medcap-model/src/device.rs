//! Device selection (`auto`, `cpu`, `cuda`, `cuda:N`) and a report of what
//! the linked libtorch can see.

use std::fmt;
use std::str::FromStr;

use tch::{Cuda, Device};

/// The libtorch version that `tch 0.24` requires exactly.
pub const LIBTORCH_VERSION: &str = "2.11.0";

/// Where the user asked tensors to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The first CUDA device when one is available, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device with this ordinal.
    Cuda(usize),
}

/// Why a device choice cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    /// The text is not one of `auto`, `cpu`, `cuda`, `cuda:N`.
    #[error("unknown device `{given}`: expected auto, cpu, cuda or cuda:N")]
    Unparsable {
        /// What was given.
        given: String,
    },
    /// CUDA was asked for but the device does not exist.
    #[error("device cuda:{ordinal} was requested but libtorch sees {available} CUDA device(s)")]
    CudaUnavailable {
        /// The requested ordinal.
        ordinal: usize,
        /// How many CUDA devices libtorch sees.
        available: usize,
    },
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unparsable = || DeviceError::Unparsable {
            given: s.to_owned(),
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(unparsable),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// The `tch` device for this choice, checked against what libtorch sees.
    pub fn resolve(self) -> Result<Device, DeviceError> {
        match self {
            Self::Auto => Ok(Device::cuda_if_available()),
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(ordinal) => {
                let available = Cuda::device_count().max(0) as usize;
                if ordinal < available {
                    Ok(Device::Cuda(ordinal))
                } else {
                    Err(DeviceError::CudaUnavailable { ordinal, available })
                }
            }
        }
    }
}

/// What the linked libtorch reports about itself and the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    /// The libtorch version this build links: torch-sys refuses any other
    /// at build time, and libtorch has no run-time version query.
    pub torch_version: &'static str,
    /// Whether a CUDA device can be used.
    pub cuda_available: bool,
    /// How many CUDA devices there are.
    pub cuda_devices: usize,
    /// Whether cuDNN can be used.
    pub cudnn_available: bool,
    /// Threads libtorch uses for CPU work.
    pub cpu_threads: i32,
}

/// Asks the linked libtorch what it can see.
pub fn runtime_info() -> RuntimeInfo {
    RuntimeInfo {
        torch_version: LIBTORCH_VERSION,
        cuda_available: Cuda::is_available(),
        cuda_devices: Cuda::device_count().max(0) as usize,
        cudnn_available: Cuda::cudnn_is_available(),
        cpu_threads: tch::get_num_threads(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("CPU".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert!(matches!(
            "tpu".parse::<DeviceChoice>(),
            Err(DeviceError::Unparsable { .. })
        ));
        assert!(matches!(
            "cuda:x".parse::<DeviceChoice>(),
            Err(DeviceError::Unparsable { .. })
        ));
    }

    #[test]
    fn display_round_trips() {
        for choice in [DeviceChoice::Auto, DeviceChoice::Cpu, DeviceChoice::Cuda(2)] {
            assert_eq!(choice.to_string().parse(), Ok(choice));
        }
    }
}
