//! Generates the C++ side of the `cxx` bridge (`src/ffi.rs`) and compiles its glue into the staticlib.
fn main() {
    cxx_build::bridge("src/ffi.rs").std("c++17").flag_if_supported("-fPIC").compile("robocache-bridge");
    println!("cargo:rerun-if-changed=src/ffi.rs");
    // The kernel sources are embedded with include_str!; a change to any of them rebuilds the crate.
    println!("cargo:rerun-if-changed=kernels");
}
