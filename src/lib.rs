//! RoboCache: robot-learning data operators for NVIDIA DALI, with a CPU backend in Rust and a GPU
//! backend in CUDA C compiled by NVRTC at first use.
//!
//! Layers, each ignorant of the one above: `kernels/*.cu` (CUDA C) ← [`gpu`] (driver + NVRTC) ←
//! [`ops`] (validation, planning, CPU backend, GPU launch) ← [`ffi`] (the one `cxx` bridge, the only
//! surface C++ sees) ← `dali_plugin/` (thin DALI operators).

pub mod dtype;
pub mod error;
pub mod ffi;
pub mod gpu;
pub mod ops;
pub mod rng;

pub use error::{Error, Result};
