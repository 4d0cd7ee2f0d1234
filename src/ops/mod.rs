//! Operator families. Each module holds its argument types, validation, output-shape planning and CPU
//! implementation; GPU launches are in the `*_gpu` modules. Nothing here knows about DALI.

pub mod action_noise;
pub mod align;
pub mod align_cpu;
pub mod align_gpu;
pub mod augment_gpu;
pub mod points;
pub mod points_augment;
pub mod points_gpu;
pub mod resample;
pub mod resample_gpu;
pub mod temporal_jitter;
