//! Where a model runs: the dfdx-free device choice of the public API, and the
//! opening of the dfdx device it names.

use super::BackendError;
use std::fmt;
use std::str::FromStr;

/// The device a [`Model`](super::Model) runs on.
///
/// Parsed from `cpu`, `cuda` (the first GPU) or `cuda:N`, and printed the same
/// way. CUDA needs a symc built with the `cuda` cargo feature (see
/// `docs/cuda.md`); otherwise building a model on it is an error.
///
/// ```
/// use symc::backend::DeviceKind;
/// assert_eq!("cuda".parse::<DeviceKind>()?, DeviceKind::Cuda(0));
/// assert_eq!("cuda:1".parse::<DeviceKind>()?.to_string(), "cuda:1");
/// assert_eq!(DeviceKind::default(), DeviceKind::Cpu);
/// assert!("gpu".parse::<DeviceKind>().is_err());
/// # Ok::<(), symc::backend::BackendError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceKind {
    /// The host processor, with symc's fused kernels.
    #[default]
    Cpu,
    /// The NVIDIA GPU of this ordinal.
    Cuda(usize),
}

impl FromStr for DeviceKind {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || BackendError::UnknownDevice(s.to_string());
        match s {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda(0)),
            _ => {
                let ordinal = s.strip_prefix("cuda:").ok_or_else(unknown)?;
                // `usize::from_str` would also take "+1".
                if ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(unknown());
                }
                ordinal.parse().map(DeviceKind::Cuda).map_err(|_| unknown())
            }
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKind::Cpu => f.write_str("cpu"),
            DeviceKind::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
        }
    }
}

impl DeviceKind {
    /// Whether models can be built on this device: CPU always; CUDA when this
    /// symc was built with it and the GPU's driver opens the device.
    ///
    /// ```
    /// use symc::backend::DeviceKind;
    /// assert!(DeviceKind::Cpu.check().is_ok());
    /// ```
    pub fn check(self) -> Result<(), BackendError> {
        match self {
            DeviceKind::Cpu => Ok(()),
            DeviceKind::Cuda(ordinal) => open_cuda(ordinal, 0).map(drop),
        }
    }
}

/// The dfdx device of GPU `ordinal`, its random stream seeded with `seed`.
#[cfg(feature = "cuda")]
pub(crate) fn open_cuda(ordinal: usize, seed: u64) -> Result<dfdx::tensor::Cuda, BackendError> {
    use cudarc::driver::{result, DriverError};
    use dfdx::tensor::CudaError;
    let unavailable = |reason: String| BackendError::DeviceUnavailable {
        device: DeviceKind::Cuda(ordinal),
        reason,
    };
    // A driver error's `Debug` asks the driver for its description and panics
    // when that fails too, as it does with no usable driver: name the code only.
    let driver = |DriverError(code)| {
        unavailable(format!(
            "the driver cannot open it ({code:?}); is the NVIDIA driver installed and the GPU \
             visible? (see docs/cuda.md)"
        ))
    };
    // cudarc 0.9 panics where the driver does not start or the ordinal names
    // no GPU, so both are asked first.
    result::init().map_err(driver)?;
    let count = result::device::get_count().map_err(driver)?;
    if ordinal >= usize::try_from(count).unwrap_or(0) {
        return Err(unavailable(format!("the driver sees {count} GPU(s)")));
    }
    dfdx::tensor::Cuda::try_build(ordinal, seed).map_err(|e| match e {
        CudaError::Driver(e) => driver(e),
        other => unavailable(format!("{other:?}")),
    })
}

/// Without the `cuda` feature there is no GPU device to open.
#[cfg(not(feature = "cuda"))]
pub(crate) fn open_cuda(
    ordinal: usize,
    _seed: u64,
) -> Result<std::convert::Infallible, BackendError> {
    Err(BackendError::DeviceUnavailable {
        device: DeviceKind::Cuda(ordinal),
        reason: "this symc was built without CUDA support; rebuild it with \
                 `cargo build --release --features cuda` (see docs/cuda.md)"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_print_back() {
        for (text, device) in [
            ("cpu", DeviceKind::Cpu),
            ("cuda:0", DeviceKind::Cuda(0)),
            ("cuda:12", DeviceKind::Cuda(12)),
        ] {
            assert_eq!(text.parse::<DeviceKind>(), Ok(device));
            assert_eq!(device.to_string(), text);
        }
        assert_eq!("cuda".parse::<DeviceKind>(), Ok(DeviceKind::Cuda(0)));
    }

    #[test]
    fn other_device_names_are_errors_that_name_them() {
        for bad in [
            "", "CPU", "gpu", "cuda:", "cuda:+1", "cuda:-1", "cuda:x", "cuda0", " cpu",
        ] {
            assert_eq!(
                bad.parse::<DeviceKind>(),
                Err(BackendError::UnknownDevice(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn without_the_feature_cuda_is_unavailable_and_says_how_to_build_it() {
        let err = DeviceKind::Cuda(1).check().unwrap_err();
        assert!(
            matches!(&err, BackendError::DeviceUnavailable { device: DeviceKind::Cuda(1), reason }
                if reason.contains("--features cuda")),
            "{err}"
        );
    }
}
