//! GPU backends of `robocache.action_noise` and `robocache.points_augment`: one launch of
//! `kernels/augment.cu` per ragged batch each. The host packs one descriptor per sample (with the
//! per-sample parameters drawn on the host) into one pinned buffer, which goes to the device in a
//! single asynchronous copy on the caller's stream, followed by the launch. No host synchronisation.
//! (`robocache.temporal_jitter` launches `resample.cu` through `resample_gpu.rs`.)

use std::ffi::c_void;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::gpu::{self, align16, kernels, Stream};
use crate::ops::action_noise::{NoiseArgs, OP as NOISE};
use crate::ops::points_augment::{PointsDraw, OP as POINTS};

/// Mirror of `RcNoiseSample` in `kernels/common.cuh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct NoiseSampleDesc {
    data: u64,
    out: u64,
    sigma: u64,
    len: i64,
    a: f64,
    b: f64,
    sample: i32,
    apply: i32,
}
const _: () = assert!(std::mem::size_of::<NoiseSampleDesc>() == 56);

/// Mirror of `RcNoiseParams` in `kernels/common.cuh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct NoiseParams {
    low: u64,
    high: u64,
    seed: u64,
    iteration: u64,
    channels: i32,
    distribution: i32,
    num_samples: i32,
    pad: i32,
}
const _: () = assert!(std::mem::size_of::<NoiseParams>() == 48);

/// One action_noise sample on the GPU.
#[derive(Clone, Debug)]
pub struct NoiseGpuSample {
    /// Device pointer to `[rows, C]` input.
    pub data: u64,
    /// Device pointer to the `[rows, C]` output.
    pub out: u64,
    /// T.
    pub rows: usize,
    /// Whether the noise applies (drawn on the host).
    pub apply: bool,
    /// Ornstein-Uhlenbeck coefficients `(a, b)`; `(0, 1)` for white noise.
    pub ou: (f64, f64),
    /// Per-channel sigma.
    pub sigma: Vec<f64>,
}

/// Bytes of pinned host and device scratch [`noise_run_gpu`] needs.
pub fn noise_scratch_bytes(samples: usize, channels: usize) -> usize {
    align16(samples * std::mem::size_of::<NoiseSampleDesc>()) + align16(channels * 8) * (2 + samples)
}

fn put<T: Copy>(host: &mut [u8], off: usize, v: &[T]) {
    // SAFETY: T is plain data (descriptors, f64, i32); viewing it as bytes is valid.
    let b = unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) };
    host[off..off + b.len()].copy_from_slice(b);
}

/// Adds noise to a whole batch with one kernel launch on `stream`.
///
/// # Safety
/// Device pointers must be valid for `[rows, channels]` elements of `dtype`; `host` must be pinned
/// memory of at least [`noise_scratch_bytes`] bytes valid until the copy ran; `dev` device memory of
/// the same size valid until the kernel ran.
#[allow(clippy::too_many_arguments)]
pub unsafe fn noise_run_gpu(
    args: &NoiseArgs,
    iteration: u64,
    dtype: DType,
    channels: usize,
    samples: &[NoiseGpuSample],
    low: &[f64],
    high: &[f64],
    host: &mut [u8],
    dev: u64,
    stream: Stream,
) -> Result<()> {
    if samples.is_empty() {
        return Ok(());
    }
    let need = noise_scratch_bytes(samples.len(), channels);
    if host.len() < need {
        return Err(Error::Batch { op: NOISE, msg: format!("scratch of {} bytes given, {need} needed", host.len()) });
    }
    if samples.len() > i32::MAX as usize {
        return Err(Error::Batch { op: NOISE, msg: "too many samples".into() });
    }
    let cb = align16(channels * 8);
    let mut off = align16(samples.len() * std::mem::size_of::<NoiseSampleDesc>());
    let mut params = NoiseParams {
        seed: args.seed,
        iteration,
        channels: channels as i32,
        distribution: args.distribution as i32,
        num_samples: samples.len() as i32,
        ..Default::default()
    };
    for (bound, field) in [(low, &mut params.low), (high, &mut params.high)] {
        if !bound.is_empty() {
            put(host, off, bound);
            *field = dev + off as u64;
        }
        off += cb;
    }
    let mut descs = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        if s.sigma.len() != channels {
            return Err(Error::sample(NOISE, i, format!("{} sigma values for C={channels}", s.sigma.len())));
        }
        put(host, off, &s.sigma);
        descs.push(NoiseSampleDesc {
            data: s.data,
            out: s.out,
            sigma: dev + off as u64,
            len: s.rows as i64,
            a: s.ou.0,
            b: s.ou.1,
            sample: i as i32,
            apply: s.apply as i32,
        });
        off += cb;
    }
    put(host, 0, &descs);
    let f = gpu::function(&kernels::AUGMENT, &format!("action_noise_{}", dtype.suffix()))?;
    gpu::copy_to_device(dev, &host[..off], stream)?;
    let mut d = dev;
    let mut p: [*mut c_void; 2] = [&mut d as *mut u64 as *mut c_void, &mut params as *mut NoiseParams as *mut c_void];
    gpu::launch(f, (samples.len() as u32, 1, 1), (256, 1, 1), stream, &mut p)
}

/// Mirror of `RcAugPointsSample` in `kernels/common.cuh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct PointsSampleDesc {
    input: u64,
    out: u64,
    transform: u64,
    mask: u64,
    n: i64,
    tile_begin: i64,
    m: [f32; 12],
    jitter: f32,
    clip: f32,
    dropout: f32,
    sample: i32,
}
const _: () = assert!(std::mem::size_of::<PointsSampleDesc>() == 112);

/// Mirror of `RcAugPointsParams` in `kernels/common.cuh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct PointsParams {
    seed: u64,
    iteration: u64,
    dims: i32,
    tile: i32,
    num_samples: i32,
    pad: i32,
}
const _: () = assert!(std::mem::size_of::<PointsParams>() == 32);

/// Points per block (one thread per point).
const POINTS_TILE: usize = 256;

/// One points_augment sample on the GPU.
#[derive(Clone, Copy, Debug)]
pub struct PointsGpuSample {
    /// Device pointer to `[n, dims]` float32 points.
    pub input: u64,
    /// Device pointer to the `[n, dims]` output.
    pub out: u64,
    /// Device pointer to the `[4, 4]` float32 transform output.
    pub transform: u64,
    /// Device pointer to the `[n]` uint8 keep-mask output.
    pub mask: u64,
    /// Points.
    pub n: usize,
    /// The drawn parameters.
    pub draw: PointsDraw,
}

/// Bytes of pinned host and device scratch [`points_run_gpu`] needs.
pub fn points_scratch_bytes(samples: &[(usize,)]) -> usize {
    let tiles: usize = samples.iter().map(|s| s.0.div_ceil(POINTS_TILE).max(1)).sum();
    align16(samples.len() * std::mem::size_of::<PointsSampleDesc>()) + align16(tiles * 4)
}

/// Transforms a whole batch of point clouds with one kernel launch on `stream`.
///
/// # Safety
/// As [`noise_run_gpu`], for `[n, dims]` float32 points, `[4, 4]` transforms and `[n]` masks.
pub unsafe fn points_run_gpu(
    seed: u64,
    iteration: u64,
    dims: usize,
    samples: &[PointsGpuSample],
    host: &mut [u8],
    dev: u64,
    stream: Stream,
) -> Result<()> {
    if samples.is_empty() {
        return Ok(());
    }
    let sizes: Vec<(usize,)> = samples.iter().map(|s| (s.n,)).collect();
    let need = points_scratch_bytes(&sizes);
    if host.len() < need {
        return Err(Error::Batch { op: POINTS, msg: format!("scratch of {} bytes given, {need} needed", host.len()) });
    }
    let map_off = align16(samples.len() * std::mem::size_of::<PointsSampleDesc>());
    let mut descs = Vec::with_capacity(samples.len());
    let mut map: Vec<i32> = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        // At least one block per sample, so that empty clouds still get their transform written.
        let t = s.n.div_ceil(POINTS_TILE).max(1);
        descs.push(PointsSampleDesc {
            input: s.input,
            out: s.out,
            transform: s.transform,
            mask: s.mask,
            n: s.n as i64,
            tile_begin: map.len() as i64,
            m: s.draw.m,
            jitter: s.draw.jitter,
            clip: s.draw.clip,
            dropout: s.draw.dropout,
            sample: i as i32,
        });
        map.extend(std::iter::repeat_n(i as i32, t));
    }
    if map.len() > i32::MAX as usize {
        return Err(Error::Batch { op: POINTS, msg: format!("{} blocks, more than 2^31 - 1", map.len()) });
    }
    put(host, 0, &descs);
    put(host, map_off, &map);
    let total = map_off + map.len() * 4;
    let mut params = PointsParams {
        seed,
        iteration,
        dims: dims as i32,
        tile: POINTS_TILE as i32,
        num_samples: samples.len() as i32,
        pad: 0,
    };
    let f = gpu::function(&kernels::AUGMENT, "points_augment_f32")?;
    gpu::copy_to_device(dev, &host[..total], stream)?;
    let mut d = dev;
    let mut m = dev + map_off as u64;
    let mut p: [*mut c_void; 3] = [
        &mut d as *mut u64 as *mut c_void,
        &mut m as *mut u64 as *mut c_void,
        &mut params as *mut PointsParams as *mut c_void,
    ];
    gpu::launch(f, (map.len() as u32, 1, 1), (POINTS_TILE as u32, 1, 1), stream, &mut p)
}
