//! Compiles every kernel source with NVRTC for several architectures, so a kernel that does not
//! build fails here and not in a training run. Needs NVRTC, not a GPU. Where NVRTC is absent the
//! test says so and passes, unless ROBOCACHE_REQUIRE_NVRTC=1 (CI sets it).
use robocache::gpu::{self, kernels};

#[test]
fn every_kernel_source_compiles() {
    if !gpu::nvrtc_available() {
        assert!(
            std::env::var("ROBOCACHE_REQUIRE_NVRTC").as_deref() != Ok("1"),
            "NVRTC required but not found on LD_LIBRARY_PATH"
        );
        eprintln!("NVRTC not found: kernel compile check not run");
        return;
    }
    let (major, minor) = gpu::nvrtc_version().unwrap();
    eprintln!("NVRTC {major}.{minor}");
    for src in kernels::ALL {
        for arch in [75, 80, 90] {
            let cubin = gpu::compile_cubin(src, arch).unwrap_or_else(|e| panic!("{e}"));
            assert!(cubin.len() > 1000, "{}: CUBIN of {} bytes", src.file, cubin.len());
            let text = String::from_utf8_lossy(&cubin);
            for k in src.kernels {
                assert!(text.contains(k), "{}: kernel {k} missing from the sm_{arch} CUBIN", src.file);
            }
        }
    }
}

#[test]
fn a_broken_kernel_reports_the_nvrtc_log() {
    if !gpu::nvrtc_available() {
        return;
    }
    static BROKEN: kernels::KernelSource = kernels::KernelSource {
        file: "broken.cu",
        source: "extern \"C\" __global__ void k(float *x) { x[0] = undefined_name; }",
        kernels: &["k"],
    };
    let e = gpu::compile_cubin(&BROKEN, 90).unwrap_err().to_string();
    assert!(e.contains("broken.cu") && e.contains("undefined_name"), "{e}");
}
