//! libFuzzer target: arbitrary bytes decoded into operator arguments, shapes and buffers and run
//! through every CPU bridge entry (robocache::ffi::fuzz::run_one). A contract violation (a caught
//! panic, an out-of-range planned size) aborts, which libFuzzer records as a crash.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = robocache::ffi::fuzz::run_one(data) {
        panic!("{e}");
    }
});
