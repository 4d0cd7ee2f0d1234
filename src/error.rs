//! Errors, end to end: every Rust entry point returns [`Result`]; the bridge turns an [`Error`] into a
//! C++ exception, which the DALI operator re-raises as a DALI error prefixed with the operator name.

use std::fmt;

/// The one error type of the crate. Messages say what was received and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A per-sample problem in the data (timestamps, shapes, values).
    #[error("{op}: sample {sample}: {msg}")]
    Sample { op: &'static str, sample: usize, msg: String },
    /// An operator argument outside its domain.
    #[error("{op}: invalid argument `{arg}`: got {got}, expected {expected}")]
    InvalidArgument { op: &'static str, arg: &'static str, got: String, expected: String },
    /// A batch-level inconsistency (e.g. channel counts differ between samples).
    #[error("{op}: {msg}")]
    Batch { op: &'static str, msg: String },
    /// An element type the operator does not handle.
    #[error("{op}: unsupported dtype for {what}: got {got}, expected one of {expected}")]
    UnsupportedDtype { op: &'static str, what: &'static str, got: String, expected: &'static str },
    /// NVRTC rejected a kernel source; the log is attached.
    #[error("robocache: CUDA kernel source `{name}` failed to compile for {arch} with NVRTC:\n{log}")]
    KernelCompile { name: &'static str, arch: String, log: String },
    /// A CUDA driver or NVRTC call failed.
    #[error("robocache: CUDA error in {what}: {msg}")]
    Cuda { what: String, msg: String },
    /// A shared library (libcuda, libnvrtc) could not be loaded.
    #[error("robocache: {0}")]
    Library(String),
    /// A Rust panic caught at the bridge: a bug, reported instead of aborting the process.
    #[error("{op}: internal error (please report): {msg}")]
    Panic { op: &'static str, msg: String },
}

/// Crate-wide result alias.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A per-sample error of operator `op`.
    pub fn sample(op: &'static str, sample: usize, msg: impl fmt::Display) -> Self {
        Error::Sample { op, sample, msg: msg.to_string() }
    }

    /// An invalid-argument error of operator `op`.
    pub fn arg(op: &'static str, arg: &'static str, got: impl fmt::Display, expected: impl fmt::Display) -> Self {
        Error::InvalidArgument { op, arg, got: got.to_string(), expected: expected.to_string() }
    }

    /// A CUDA driver error during `what`.
    pub fn cuda(what: impl fmt::Display, err: impl fmt::Debug) -> Self {
        Error::Cuda { what: what.to_string(), msg: format!("{err:?}") }
    }
}

/// Runs `f`, turning a panic into [`Error::Panic`]: a panic crossing the `cxx` bridge would abort the
/// whole training process.
pub fn guard<T>(op: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "unknown panic".to_string()
            };
            Err(Error::Panic { op, msg })
        }
    }
}
