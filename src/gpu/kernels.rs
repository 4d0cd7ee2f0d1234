//! The kernel registry: every CUDA C source in `kernels/`, embedded at build time, with the names of
//! the kernels it defines. `common.cuh` is prepended to each source before NVRTC sees it.

/// The shared header, prepended to every source.
pub const COMMON: &str = include_str!("../../kernels/common.cuh");

/// One embedded CUDA C source file.
#[derive(Debug)]
pub struct KernelSource {
    /// File name under `kernels/` (also the NVRTC program name).
    pub file: &'static str,
    /// The source text, without `common.cuh`.
    pub source: &'static str,
    /// Every `extern "C"` kernel the file defines.
    pub kernels: &'static [&'static str],
}

impl KernelSource {
    /// `common.cuh` followed by the source, as NVRTC compiles it.
    pub fn full_source(&self) -> String {
        format!("{COMMON}\n#line 1 \"{}\"\n{}", self.file, self.source)
    }
}

/// `kernels/resample.cu`.
pub static RESAMPLE: KernelSource = KernelSource {
    file: "resample.cu",
    source: include_str!("../../kernels/resample.cu"),
    kernels: &[
        "resample_v16_f32",
        "resample_v8_f32",
        "resample_v4_f32",
        "resample_v16_f64",
        "resample_v8_f64",
        "resample_v16_f16",
        "resample_v8_f16",
        "resample_v4_f16",
        "resample_v2_f16",
        "resample_v16_bf16",
        "resample_v8_bf16",
        "resample_v4_bf16",
        "resample_v2_bf16",
    ],
};

/// `kernels/align_core.cu` + `kernels/align.cu` + `kernels/align_flat.cu` + `kernels/align_sweep.cu`
/// (one program).
pub static ALIGN: KernelSource = KernelSource {
    file: "align.cu",
    source: concat!(
        include_str!("../../kernels/align_core.cu"),
        "\n",
        include_str!("../../kernels/align.cu"),
        "\n",
        include_str!("../../kernels/align_flat.cu"),
        "\n",
        include_str!("../../kernels/align_sweep.cu")
    ),
    kernels: &[
        "align_f32",
        "align_f64",
        "align_f16",
        "align_bf16",
        "align_flat_f32",
        "align_flat_f64",
        "align_flat_f16",
        "align_flat_bf16",
        "align_staged_f32",
        "align_staged_f64",
        "align_staged_f16",
        "align_staged_bf16",
        "align_rows_f32",
        "align_rows_f64",
        "align_rows_f16",
        "align_rows_bf16",
        "align_regs_f32",
        "align_regs_f64",
        "align_regs_f16",
        "align_regs_bf16",
        "align_locate_f32",
        "align_locate_f64",
        "align_locate_f16",
        "align_locate_bf16",
        "align_gather_f32",
        "align_gather_f64",
        "align_gather_f16",
        "align_gather_bf16",
        "align_sweep_f32",
        "align_sweep_f64",
        "align_sweep_f16",
        "align_sweep_bf16",
    ],
};

/// `kernels/points.cu` + `kernels/points_sort.cu` (one program): voxel_downsample, voxelize and
/// normalize.
pub static POINTS: KernelSource = KernelSource {
    file: "points.cu",
    source: concat!(include_str!("../../kernels/points.cu"), "\n", include_str!("../../kernels/points_sort.cu")),
    kernels: &[
        "points_init",
        "points_bounds",
        "points_bounds4",
        "points_hist",
        "points_hist4",
        "points_pass",
        "points_passw",
        "points_passw4",
        "points_passw2",
        "points_runs",
        "points_runs48",
        "points_select",
        "points_finalize",
        "points_finalize_ldg",
        "points_finalize2",
        "points_finalize4",
        "points_dense_zero",
        "points_dense_acc",
        "points_dense_mean",
        "points_radius",
        "points_apply",
        "points_local",
    ],
};

/// All sources, for the compile-everything test.
/// `kernels/augment.cu` (action_noise, points_augment; temporal_jitter launches `resample.cu`).
pub static AUGMENT: KernelSource = KernelSource {
    file: "augment.cu",
    source: include_str!("../../kernels/augment.cu"),
    kernels: &["action_noise_f32", "action_noise_f64", "action_noise_f16", "action_noise_bf16", "points_augment_f32"],
};

/// All sources, for the compile-everything test.
pub static ALL: &[&KernelSource] = &[&RESAMPLE, &POINTS, &AUGMENT, &ALIGN];
