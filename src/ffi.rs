//! The one `cxx` bridge: the only surface C++ (`dali_plugin/`) sees. Every function returns
//! `Result` and runs under [`crate::error::guard`], so neither an error nor a panic can cross into
//! C++ unchecked. Pointers travel as `usize`; the C++ side owns every buffer (DALI's tensors and
//! scratchpad). The declarations live here; each operator family implements its entries in
//! `src/ffi/<op>.rs`.

use crate::dtype::DType;
use crate::error::{Error, Result};

mod align;
mod augment;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
#[cfg(any(test, feature = "fuzzing"))]
mod fuzz_align;
#[cfg(test)]
mod fuzz_tests;
mod points;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod prop_tests_aug;
mod resample;
use align::*;
use augment::*;
use points::*;
use resample::*;

#[cxx::bridge(namespace = "robocache::ffi")]
mod bridge {
    /// Element types, as the C++ side maps them from `DALIDataType`.
    #[derive(Debug, Clone, Copy)]
    enum ElemType {
        Float32,
        Float16,
        Float64,
        Int64,
        Int32,
        UInt16,
        UInt8,
        Other,
    }

    /// `robocache__Resample`'s constant arguments.
    struct ResampleConfig {
        method: String,
        extrapolate: String,
        dtype: String,
        target_rate: f64,
        has_target_rate: bool,
        num_samples: i64,
        has_num_samples: bool,
        has_target_timestamps: bool,
    }

    /// One sample's inputs: shapes, pointers (host for timestamps; host or device for data) and
    /// per-sample arguments.
    struct ResampleSampleIn {
        data: usize,
        data_ndim: i32,
        rows: i64,
        channels: i64,
        ts: usize,
        ts_ndim: i32,
        ts_len: i64,
        targets: usize,
        targets_ndim: i32,
        targets_len: i64,
        start: f64,
        has_start: bool,
        end: f64,
        has_end: bool,
    }

    /// Batch-wide input types.
    struct ResampleBatchIn {
        data_type: ElemType,
        ts_type: ElemType,
        targets_type: ElemType,
    }

    /// One sample's output pointers.
    struct ResampleOut {
        out: usize,
        out_ts: usize,
    }

    // ---- augmentation: temporal_jitter, action_noise, points_augment (src/ffi/augment.rs) ----

    /// `robocache__TemporalJitter`'s constant arguments.
    struct JitterConfig {
        method: String,
        dtype: String,
        target_rate: f64,
        has_target_rate: bool,
        num_samples: i64,
        has_num_samples: bool,
        warp_knots: i64,
        seed: i64,
    }

    /// One temporal_jitter sample: shapes, pointers and per-sample ranges.
    struct JitterSampleIn {
        data: usize,
        data_ndim: i32,
        rows: i64,
        channels: i64,
        ts: usize,
        ts_ndim: i32,
        ts_len: i64,
        speed_lo: f64,
        speed_hi: f64,
        offset_lo: f64,
        offset_hi: f64,
        warp_strength: f64,
    }

    /// temporal_jitter batch-wide input types.
    struct JitterBatchIn {
        data_type: ElemType,
        ts_type: ElemType,
    }

    /// `robocache__ActionNoise`'s constant arguments.
    struct NoiseConfig {
        distribution: String,
        dtype: String,
        rate: f64,
        has_rate: bool,
        low: Vec<f64>,
        high: Vec<f64>,
        seed: i64,
    }

    /// One action_noise sample: shape, pointer, per-sample sigma (host float32), p and correlation time.
    struct NoiseSampleIn {
        data: usize,
        data_ndim: i32,
        rows: i64,
        channels: i64,
        sigma: usize,
        sigma_len: i64,
        p: f64,
        correlation_time: f64,
    }

    /// `robocache__PointsAugment`'s constant arguments.
    struct AugPointsConfig {
        rotation: String,
        seed: i64,
    }

    /// One points_augment sample: shape, pointer and per-sample ranges.
    struct AugPointsSampleIn {
        data: usize,
        ndim: i32,
        n: i64,
        dims: i64,
        angle_lo: f64,
        angle_hi: f64,
        scale_lo: f64,
        scale_hi: f64,
        tx: f64,
        ty: f64,
        tz: f64,
        jitter: f64,
        jitter_clip: f64,
        dropout: f64,
    }

    /// One points_augment sample's output pointers.
    struct AugPointsOut {
        out: usize,
        transform: usize,
        mask: usize,
    }

    extern "Rust" {
        type ResampleOp;
        fn resample_new(cfg: &ResampleConfig) -> Result<Box<ResampleOp>>;
        fn resample_setup(
            op: &ResampleOp,
            batch: &ResampleBatchIn,
            samples: &[ResampleSampleIn],
            out_lens: &mut [i64],
        ) -> Result<()>;
        unsafe fn resample_run_cpu(
            op: &ResampleOp,
            batch: &ResampleBatchIn,
            index: usize,
            sample: &ResampleSampleIn,
            out: &ResampleOut,
        ) -> Result<()>;
        fn resample_gpu_scratch_bytes(
            op: &ResampleOp,
            batch: &ResampleBatchIn,
            samples: &[ResampleSampleIn],
            out_lens: &[i64],
        ) -> Result<usize>;
        #[allow(clippy::too_many_arguments)]
        unsafe fn resample_run_gpu(
            op: &ResampleOp,
            batch: &ResampleBatchIn,
            samples: &[ResampleSampleIn],
            out_lens: &[i64],
            outs: &[ResampleOut],
            host_scratch: usize,
            scratch_bytes: usize,
            dev_scratch: usize,
            stream: usize,
            phase: u8,
        ) -> Result<()>;
        fn robocache_version() -> String;

        type JitterOp;
        fn jitter_new(cfg: &JitterConfig) -> Result<Box<JitterOp>>;
        fn jitter_setup(
            op: &mut JitterOp,
            batch: &JitterBatchIn,
            samples: &[JitterSampleIn],
            out_lens: &mut [i64],
        ) -> Result<()>;
        unsafe fn jitter_run_cpu(
            op: &JitterOp,
            batch: &JitterBatchIn,
            index: usize,
            sample: &JitterSampleIn,
            out: &ResampleOut,
        ) -> Result<()>;
        fn jitter_gpu_scratch_bytes(op: &JitterOp, batch: &JitterBatchIn, samples: &[JitterSampleIn]) -> Result<usize>;
        #[allow(clippy::too_many_arguments)]
        unsafe fn jitter_run_gpu(
            op: &JitterOp,
            batch: &JitterBatchIn,
            samples: &[JitterSampleIn],
            outs: &[ResampleOut],
            host_scratch: usize,
            scratch_bytes: usize,
            dev_scratch: usize,
            stream: usize,
        ) -> Result<()>;

        type NoiseOp;
        fn noise_new(cfg: &NoiseConfig) -> Result<Box<NoiseOp>>;
        fn noise_setup(op: &mut NoiseOp, data_type: ElemType, samples: &[NoiseSampleIn]) -> Result<()>;
        unsafe fn noise_run_cpu(
            op: &NoiseOp,
            data_type: ElemType,
            index: usize,
            sample: &NoiseSampleIn,
            out: usize,
        ) -> Result<()>;
        fn noise_gpu_scratch_bytes(op: &NoiseOp, samples: &[NoiseSampleIn]) -> Result<usize>;
        #[allow(clippy::too_many_arguments)]
        unsafe fn noise_run_gpu(
            op: &NoiseOp,
            data_type: ElemType,
            samples: &[NoiseSampleIn],
            outs: &[usize],
            host_scratch: usize,
            scratch_bytes: usize,
            dev_scratch: usize,
            stream: usize,
        ) -> Result<()>;

        type AugPointsOp;
        fn points_augment_new(cfg: &AugPointsConfig) -> Result<Box<AugPointsOp>>;
        fn points_augment_setup(op: &mut AugPointsOp, data_type: ElemType, samples: &[AugPointsSampleIn])
            -> Result<()>;
        unsafe fn points_augment_run_cpu(
            op: &AugPointsOp,
            index: usize,
            sample: &AugPointsSampleIn,
            out: &AugPointsOut,
        ) -> Result<()>;
        fn points_augment_gpu_scratch_bytes(op: &AugPointsOp, samples: &[AugPointsSampleIn]) -> Result<usize>;
        #[allow(clippy::too_many_arguments)]
        unsafe fn points_augment_run_gpu(
            op: &AugPointsOp,
            samples: &[AugPointsSampleIn],
            outs: &[AugPointsOut],
            host_scratch: usize,
            scratch_bytes: usize,
            dev_scratch: usize,
            stream: usize,
        ) -> Result<()>;
    }

    // ---- points: voxel_downsample, voxelize, normalize (src/ffi/points.rs) ----

    /// Constant arguments of `robocache__VoxelDownsample`, `robocache__Voxelize` and
    /// `robocache__Normalize` (`kind` names the operator).
    struct PointsConfig {
        kind: String,
        voxel_size: Vec<f32>,
        origin: Vec<f32>,
        anchor: String,
        range: Vec<f32>,
        mode: String,
        min_points: i64,
        max_points: i64,
        max_voxels: i64,
        return_counts: bool,
    }

    /// One sample: points (host or device) and its per-sample `voxel_size` (host, or 0).
    struct PointsSampleIn {
        data: usize,
        ndim: i32,
        rows: i64,
        cols: i64,
        voxel: usize,
        voxel_len: i64,
    }

    /// One output's element type and number of dimensions.
    struct PointsOutDesc {
        ty: ElemType,
        ndim: i32,
    }

    extern "Rust" {
        type PointsOp;
        fn points_new(cfg: &PointsConfig) -> Result<Box<PointsOp>>;
        fn points_outputs(op: &PointsOp) -> Vec<PointsOutDesc>;
        unsafe fn points_setup(
            op: &PointsOp,
            data_type: ElemType,
            samples: &[PointsSampleIn],
            shapes: &mut [i64],
        ) -> Result<bool>;
        unsafe fn points_cpu_compute(
            op: &PointsOp,
            index: usize,
            sample: &PointsSampleIn,
            shapes: &mut [i64],
        ) -> Result<()>;
        unsafe fn points_cpu_write(op: &PointsOp, index: usize, outs: &[usize]) -> Result<()>;
        unsafe fn points_gpu_scratch(op: &PointsOp, samples: &[PointsSampleIn], sizes: &mut [usize]) -> Result<()>;
        #[allow(clippy::too_many_arguments)]
        unsafe fn points_gpu_run(
            op: &PointsOp,
            samples: &[PointsSampleIn],
            outs: &[usize],
            host: usize,
            host_bytes: usize,
            dev: usize,
            stream: usize,
            emulator: usize,
            shapes: &mut [i64],
        ) -> Result<bool>;
        #[allow(clippy::too_many_arguments)]
        unsafe fn points_gpu_finish(
            op: &PointsOp,
            samples: &[PointsSampleIn],
            outs: &[usize],
            host: usize,
            host_bytes: usize,
            dev: usize,
            stream: usize,
            emulator: usize,
        ) -> Result<()>;
        /// The radix-pass launches the instance learned (0: none), for raw callers to carry.
        fn points_pass_hint(op: &PointsOp) -> u32;
        fn points_set_pass_hint(op: &PointsOp, v: u32);
    }

    /// `robocache__Align`'s constant arguments.
    struct AlignConfig {
        /// Regular inputs: 2 N, or 2 N + 1 with the reference timestamps last.
        num_inputs: i32,
        methods: Vec<String>,
        max_gap: Vec<f64>,
        quaternions: Vec<i64>,
        quaternion_order: String,
        fill: String,
        span: String,
        dtype: String,
        target_rate: f64,
        has_target_rate: bool,
        num_samples: i64,
        has_num_samples: bool,
    }

    /// One (sample, stream) input, sample-major (`index = sample * N + stream`): shapes, types and
    /// pointers (host for timestamps; host or device for data).
    struct AlignStreamIn {
        data: usize,
        data_ndim: i32,
        rows: i64,
        channels: i64,
        data_type: ElemType,
        ts: usize,
        ts_ndim: i32,
        ts_len: i64,
        ts_type: ElemType,
    }

    /// One sample's reference timestamps (host), or `ts == 0` without a reference input.
    struct AlignRefIn {
        ts: usize,
        ndim: i32,
        len: i64,
        ts_type: ElemType,
    }

    /// One sample's output pointers.
    struct AlignOut {
        out: usize,
        valid: usize,
        out_ts: usize,
    }

    extern "Rust" {
        type AlignOp;
        fn align_new(cfg: &AlignConfig) -> Result<Box<AlignOp>>;
        fn align_num_streams(op: &AlignOp) -> usize;
        fn align_setup(
            op: &AlignOp,
            streams: &[AlignStreamIn],
            refs: &[AlignRefIn],
            out_lens: &mut [i64],
        ) -> Result<i64>;
        unsafe fn align_run_cpu(
            op: &AlignOp,
            index: usize,
            streams: &[AlignStreamIn],
            reference: &AlignRefIn,
            out: &AlignOut,
        ) -> Result<()>;
        /// Writes (pinned host bytes, device bytes) to `sizes[0..2]`.
        fn align_gpu_scratch(
            op: &AlignOp,
            streams: &[AlignStreamIn],
            refs: &[AlignRefIn],
            out_lens: &[i64],
            sizes: &mut [usize],
        ) -> Result<()>;
        #[allow(clippy::too_many_arguments)]
        unsafe fn align_run_gpu(
            op: &AlignOp,
            streams: &[AlignStreamIn],
            refs: &[AlignRefIn],
            out_lens: &[i64],
            outs: &[AlignOut],
            host_scratch: usize,
            scratch_bytes: usize,
            dev_scratch: usize,
            dev_scratch_bytes: usize,
            stream: usize,
            phase: u8,
        ) -> Result<()>;
    }
}

pub use bridge::*;

pub(crate) fn dtype_of(t: ElemType) -> Option<DType> {
    match t {
        ElemType::Float32 => Some(DType::F32),
        ElemType::Float16 => Some(DType::F16),
        ElemType::Float64 => Some(DType::F64),
        ElemType::Int64 => Some(DType::I64),
        ElemType::Int32 => Some(DType::I32),
        ElemType::UInt16 => Some(DType::U16),
        ElemType::UInt8 => Some(DType::U8),
        _ => None,
    }
}

pub(crate) fn dtype_or_err(op: &'static str, what: &'static str, t: ElemType) -> Result<DType> {
    dtype_of(t).ok_or_else(|| Error::UnsupportedDtype { op, what, got: format!("{t:?}"), expected: "a numeric type" })
}

/// The crate version, for `robocache.__version__` checks.
fn robocache_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// # Safety
/// `p` must point to `n` readable values of `T` (or `n == 0`).
pub(crate) unsafe fn slice<'a, T>(p: usize, n: i64) -> &'a [T] {
    if n <= 0 || p == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(p as *const T, n as usize)
    }
}

/// # Safety
/// As [`slice`], for writes.
pub(crate) unsafe fn slice_mut<'a, T>(p: usize, n: usize) -> &'a mut [T] {
    if n == 0 || p == 0 {
        &mut []
    } else {
        std::slice::from_raw_parts_mut(p as *mut T, n)
    }
}
