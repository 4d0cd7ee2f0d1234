//! Compiles `kernels/align.cu` with NVRTC (no GPU needed) and writes the CUBIN, for reading the
//! kernels' register and stack use offline: `cargo run --release --example dump_align_cubin 90
//! /tmp/align.cubin && cuobjdump -res-usage /tmp/align.cubin` (`ROBOCACHE_NVRTC_OPTIONS` applies,
//! e.g. `-DRC_ALIGN_VARIANTS=1` for the tuning entry points).

fn main() {
    let arch: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(90);
    let out = std::env::args().nth(2).unwrap_or_else(|| "/tmp/align.cubin".into());
    let cubin = robocache::gpu::compile_cubin(&robocache::gpu::kernels::ALIGN, arch).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&out, cubin).unwrap_or_else(|e| panic!("{out}: {e}"));
}
