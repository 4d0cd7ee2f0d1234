//! GPU layer: CUDA driver access through cudarc, kernels compiled at first use by NVRTC for the GPU
//! present (CUBIN for its `sm_XY`), cached per device behind a lock. Launches go on the caller's
//! stream (DALI's `ws.stream()`) with the raw launch API; nothing here synchronises the host.

pub mod kernels;

use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::sync::{Mutex, OnceLock};

use cudarc::driver::{result as drv, sys};
use cudarc::nvrtc::{result as nvrtc_result, sys as nvrtc_sys};

use crate::error::{Error, Result};
use kernels::KernelSource;

/// Rounds a scratch offset up to 16 bytes (every operator packs its per-batch descriptors and
/// timestamps into one pinned buffer with this alignment).
pub const fn align16(x: usize) -> usize {
    (x + 15) & !15
}

/// A CUDA stream handle as DALI passes it (`cudaStream_t` is the driver's `CUstream`).
pub type Stream = sys::CUstream;

/// Checks that the CUDA driver library can be loaded, without panicking (cudarc panics otherwise).
pub fn driver_available() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names.
    unsafe { sys::is_culib_present() }
}

/// Checks that NVRTC can be loaded (already loaded by `import robocache`, or on the loader path).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names.
    unsafe { nvrtc_sys::is_culib_present() }
}

/// NVRTC's version, `(major, minor)`.
pub fn nvrtc_version() -> Result<(i32, i32)> {
    if !nvrtc_available() {
        return Err(Error::Library(NVRTC_MISSING.into()));
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: NVRTC is loaded; the out-pointers are valid.
    unsafe { nvrtc_sys::nvrtcVersion(&mut major, &mut minor) }.result().map_err(|e| Error::cuda("nvrtcVersion", e))?;
    Ok((major, minor))
}

const NVRTC_MISSING: &str = "NVRTC (libnvrtc.so.13) could not be loaded: `pip install nvidia-cuda-nvrtc==13.0.*`, \
or set ROBOCACHE_NVRTC to the library's path before `import robocache`";
const DRIVER_MISSING: &str =
    "the CUDA driver (libcuda.so.1) could not be loaded: the GPU backend needs an NVIDIA GPU and driver";

/// Compiles `src` with NVRTC to CUBIN for `sm_{arch}` (e.g. 90). Needs NVRTC, not a GPU.
///
/// # Errors
/// [`Error::KernelCompile`] with NVRTC's log, or [`Error::Library`] when NVRTC is absent.
pub fn compile_cubin(src: &KernelSource, arch: u32) -> Result<Vec<u8>> {
    if !nvrtc_available() {
        return Err(Error::Library(NVRTC_MISSING.into()));
    }
    let code = CString::new(src.full_source()).map_err(|e| Error::cuda("kernel source", e))?;
    let name = CString::new(src.file).map_err(|e| Error::cuda("kernel name", e))?;
    let mut opts = vec![format!("--gpu-architecture=sm_{arch}"), "--fmad=false".to_string(), "--std=c++17".to_string()];
    // Extra NVRTC options for tuning (e.g. `-DRC_ALIGN_MIN_BLOCKS=5`), space-separated.
    if let Ok(extra) = std::env::var("ROBOCACHE_NVRTC_OPTIONS") {
        opts.extend(extra.split_whitespace().map(str::to_string));
    }
    let prog = nvrtc_result::create_program(&code, Some(&name)).map_err(|e| Error::cuda("nvrtcCreateProgram", e))?;
    // SAFETY: `prog` was just created and is destroyed exactly once below.
    unsafe {
        let compiled = nvrtc_result::compile_program(prog, &opts);
        let out = match compiled {
            Ok(()) => get_cubin(prog),
            Err(_) => {
                let log = nvrtc_result::get_program_log(prog)
                    .map(|l| {
                        let bytes: Vec<u8> = l.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
                        String::from_utf8_lossy(&bytes).into_owned()
                    })
                    .unwrap_or_else(|e| format!("(no log: {e:?})"));
                Err(Error::KernelCompile { name: src.file, arch: format!("sm_{arch}"), log })
            }
        };
        let _ = nvrtc_result::destroy_program(prog);
        out
    }
}

/// # Safety
/// `prog` must be a successfully compiled, live NVRTC program.
unsafe fn get_cubin(prog: nvrtc_sys::nvrtcProgram) -> Result<Vec<u8>> {
    let mut size = 0usize;
    nvrtc_sys::nvrtcGetCUBINSize(prog, &mut size).result().map_err(|e| Error::cuda("nvrtcGetCUBINSize", e))?;
    let mut buf = vec![0u8; size];
    nvrtc_sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr() as *mut _).result().map_err(|e| Error::cuda("nvrtcGetCUBIN", e))?;
    Ok(buf)
}

/// A loaded kernel function (a driver handle; valid for the life of the process).
#[derive(Clone, Copy)]
pub struct Function(sys::CUfunction);
// SAFETY: CUfunction handles are plain driver handles usable from any thread of the process.
unsafe impl Send for Function {}
// SAFETY: as above; the driver synchronises access internally.
unsafe impl Sync for Function {}

#[derive(Default)]
struct Cache {
    modules: HashMap<(i32, &'static str), usize>,
    functions: HashMap<(i32, String), Function>,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Cache::default()))
}

/// The device of the CUDA context current on this thread (DALI's GPU threads have their device's
/// primary context current through the runtime API).
///
/// # Errors
/// No driver, or no context current on this thread.
pub fn current_device() -> Result<i32> {
    if !driver_available() {
        return Err(Error::Library(DRIVER_MISSING.into()));
    }
    drv::init().map_err(|e| Error::cuda("cuInit", e))?;
    // SAFETY: plain driver queries with valid out-pointers.
    unsafe {
        let mut cur: sys::CUcontext = std::ptr::null_mut();
        sys::cuCtxGetCurrent(&mut cur).result().map_err(|e| Error::cuda("cuCtxGetCurrent", e))?;
        if cur.is_null() {
            return Err(Error::Cuda {
                what: "cuCtxGetCurrent".into(),
                msg: "no CUDA context is current on this thread".into(),
            });
        }
        let mut dev: sys::CUdevice = 0;
        sys::cuCtxGetDevice(&mut dev).result().map_err(|e| Error::cuda("cuCtxGetDevice", e))?;
        Ok(dev)
    }
}

/// Compute capability of `device` as `XY` (90 for Hopper).
fn compute_capability(device: i32) -> Result<u32> {
    let dev = drv::device::get(device).map_err(|e| Error::cuda(format!("cuDeviceGet({device})"), e))?;
    // SAFETY: attribute queries on a valid device handle.
    unsafe {
        let major =
            drv::device::get_attribute(dev, sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
                .map_err(|e| Error::cuda("cuDeviceGetAttribute", e))?;
        let minor =
            drv::device::get_attribute(dev, sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
                .map_err(|e| Error::cuda("cuDeviceGetAttribute", e))?;
        Ok((major * 10 + minor) as u32)
    }
}

/// Returns kernel `name` from `src` for the current context's device, compiling and loading the
/// source at first use.
pub fn function(src: &'static KernelSource, name: &str) -> Result<Function> {
    let device = current_device()?;
    let mut c = cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = c.functions.get(&(device, name.to_string())) {
        return Ok(*f);
    }
    let arch = compute_capability(device)?;
    let module = match c.modules.get(&(device, src.file)) {
        Some(m) => *m as sys::CUmodule,
        None => {
            let cubin = compile_cubin(src, arch)?;
            // SAFETY: `cubin` is a complete CUBIN image produced by NVRTC for this device.
            let m = unsafe { drv::module::load_data(cubin.as_ptr() as *const c_void) }
                .map_err(|e| Error::cuda(format!("cuModuleLoadData({})", src.file), e))?;
            c.modules.insert((device, src.file), m as usize);
            m
        }
    };
    let cname = CString::new(name).map_err(|e| Error::cuda("kernel name", e))?;
    // SAFETY: `module` is a live module loaded above or earlier.
    let f = unsafe { drv::module::get_function(module, cname) }
        .map_err(|e| Error::cuda(format!("cuModuleGetFunction({name})"), e))?;
    let f = Function(f);
    c.functions.insert((device, name.to_string()), f);
    Ok(f)
}

/// Copies `src` (pinned host memory) to `dst` on `stream`, asynchronously.
///
/// # Safety
/// `dst` must hold `src.len()` bytes of device memory; `src` must stay valid until the copy ran on
/// `stream` (DALI's scratchpad frees pinned memory in stream order).
pub unsafe fn copy_to_device(dst: u64, src: &[u8], stream: Stream) -> Result<()> {
    drv::memcpy_htod_async(dst, src, stream).map_err(|e| Error::cuda("cuMemcpyHtoDAsync", e))
}

/// Copies `src.len()` bytes from device memory `src` into `dst` (pinned host memory) on `stream`,
/// asynchronously.
///
/// # Safety
/// `src` must hold `dst.len()` bytes of device memory; `dst` must stay valid until the copy ran.
pub unsafe fn copy_to_host(dst: &mut [u8], src: u64, stream: Stream) -> Result<()> {
    drv::memcpy_dtoh_async(dst, src, stream).map_err(|e| Error::cuda("cuMemcpyDtoHAsync", e))
}

/// Blocks the host until all work queued on `stream` has finished. Only for the one device-to-host
/// copy of per-sample counts that an operator with data-dependent output shapes is allowed.
///
/// # Safety
/// `stream` must be a live stream of the current context.
pub unsafe fn synchronize(stream: Stream) -> Result<()> {
    drv::stream::synchronize(stream).map_err(|e| Error::cuda("cuStreamSynchronize", e))
}

/// Launches `f` on `stream`.
///
/// # Safety
/// `params` must match the kernel's parameter list and point to live values; every device pointer
/// they carry must be valid for the kernel's accesses until it completes.
pub unsafe fn launch(
    f: Function,
    grid: (u32, u32, u32),
    block: (u32, u32, u32),
    stream: Stream,
    params: &mut [*mut c_void],
) -> Result<()> {
    drv::launch_kernel(f.0, grid, block, 0, stream, params).map_err(|e| Error::cuda("cuLaunchKernel", e))
}

/// As [`launch`], with `smem` bytes of dynamic shared memory per block (at most 48 KB).
///
/// # Safety
/// As [`launch`].
pub unsafe fn launch_smem(
    f: Function,
    grid: (u32, u32, u32),
    block: (u32, u32, u32),
    smem: u32,
    stream: Stream,
    params: &mut [*mut c_void],
) -> Result<()> {
    drv::launch_kernel(f.0, grid, block, smem, stream, params).map_err(|e| Error::cuda("cuLaunchKernel", e))
}
