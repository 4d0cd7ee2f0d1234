// common.cuh: definitions shared by every RoboCache kernel source. The Rust kernel registry
// (src/gpu/kernels.rs) prepends this file to each kernels/*.cu before NVRTC compiles it, so the
// sources need no include paths and no CUDA headers. Parameter structs here are mirrored
// #[repr(C)] in Rust, with a size check on the Rust side.
#pragma once

typedef unsigned long long rc_u64;
typedef long long rc_i64;

// ---- output clocks shared by resample and align (mirrors of the Rust grids): target k of a uniform
// grid over [a, b] at `rate` Hz (clamped to b) or of `n` points (exact ends), in f64 seconds or i64 ns ----
__device__ __forceinline__ double rc_grid_rate_f(double a, double b, double rate, rc_i64 k) {
  double t = a + (double)k / rate;
  return t > b ? b : t;
}
__device__ __forceinline__ rc_i64 rc_grid_rate_i(rc_i64 a, rc_i64 b, double rate, rc_i64 k) {
  rc_i64 t = a + __double2ll_rn((double)k / rate * 1e9);
  return t < b ? t : b;
}
__device__ __forceinline__ double rc_grid_count_f(double a, double b, rc_i64 n, rc_i64 k) {
  if (k == n - 1) return b;
  if (k == 0) return a;
  return a + (b - a) * ((double)k / (double)(n - 1));
}
__device__ __forceinline__ rc_i64 rc_grid_count_i(rc_i64 a, rc_i64 b, rc_i64 n, rc_i64 k) {
  if (k == n - 1) return b;
  if (k == 0) return a;
  return a + __double2ll_rn((double)(b - a) * ((double)k / (double)(n - 1)));
}
// A time difference in seconds or nanoseconds, as double.
__device__ __forceinline__ double rc_diff(double a, double b) { return a - b; }
__device__ __forceinline__ double rc_diff(rc_i64 a, rc_i64 b) { return (double)(a - b); }

// ---- element conversions, no headers needed (PTX cvt for fp16; bit arithmetic for bf16) ----
__device__ __forceinline__ float rc_h2f(unsigned short h) {
  float f;
  asm("{cvt.f32.f16 %0, %1;}" : "=f"(f) : "h"(h));
  return f;
}
__device__ __forceinline__ unsigned short rc_f2h(float f) {
  unsigned short h;
  asm("{cvt.rn.f16.f32 %0, %1;}" : "=h"(h) : "f"(f));
  return h;
}
__device__ __forceinline__ float rc_bf2f(unsigned short b) {
  return __uint_as_float(((unsigned)b) << 16);
}
// Round to nearest even, NaN kept quiet: the same result as half::bf16::from_f32 on the CPU.
__device__ __forceinline__ unsigned short rc_f2bf(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (unsigned short)(u >> 16);
}

// Element traits: storage bits, accumulator type, conversions.
struct RcF32 {
  typedef float bits; typedef float acc;
  static __device__ __forceinline__ float load(float x) { return x; }
  static __device__ __forceinline__ float store(float x) { return x; }
  static __device__ __forceinline__ float nan() { return __int_as_float(0x7fc00000); }
};
struct RcF64 {
  typedef double bits; typedef double acc;
  static __device__ __forceinline__ double load(double x) { return x; }
  static __device__ __forceinline__ double store(double x) { return x; }
  static __device__ __forceinline__ double nan() { return __longlong_as_double(0x7ff8000000000000ll); }
};
struct RcF16 {
  typedef unsigned short bits; typedef float acc;
  static __device__ __forceinline__ float load(unsigned short x) { return rc_h2f(x); }
  static __device__ __forceinline__ unsigned short store(float x) { return rc_f2h(x); }
  static __device__ __forceinline__ unsigned short nan() { return 0x7e00; }
};
struct RcBF16 {
  typedef unsigned short bits; typedef float acc;
  static __device__ __forceinline__ float load(unsigned short x) { return rc_bf2f(x); }
  static __device__ __forceinline__ unsigned short store(float x) { return rc_f2bf(x); }
  static __device__ __forceinline__ unsigned short nan() { return 0x7fc0; }
};

// Vector loads of VB bytes through the read-only path.
template <int VB> struct RcVec;
template <> struct RcVec<16> { typedef uint4 type; };
template <> struct RcVec<8> { typedef uint2 type; };
template <> struct RcVec<4> { typedef unsigned int type; };
template <> struct RcVec<2> { typedef unsigned short type; };

// ---- resample ----
// One descriptor per sample of the ragged batch (mirrors ResampleSampleDesc in src/ops/resample_gpu.rs).
struct RcResampleSample {
  rc_u64 data;        // const element*  [len, C]
  rc_u64 out;         // element*        [num_out, C]
  rc_u64 out_ts;      // double* or long long*  [num_out]
  rc_u64 ts;          // const double* or const long long*  [len]
  rc_u64 targets;     // explicit targets [num_out], or 0
  rc_i64 len;         // T
  rc_i64 num_out;     // N
  rc_i64 tile_begin;  // first block of this sample in the launch
  double a_f, b_f;    // grid ends, float64 seconds
  rc_i64 a_i, b_i;    // grid ends, int64 nanoseconds
};  // 96 bytes

struct RcResampleParams {
  double rate;        // target_rate (grid == 0)
  rc_i64 count;       // num_samples (grid == 1)
  int num_samples;    // samples in the batch
  int vec_per_row;    // row bytes / vector bytes
  int tile;           // targets per block
  int method;         // 0 linear, 1 nearest, 2 previous
  int extrapolate;    // 0 clamp, 1 nan, 2 error (checked on the host; behaves as clamp here)
  int grid;           // 0 rate, 1 count, 2 explicit
  int ts_int;         // 1: int64 nanoseconds, 0: float64 seconds
  int pad;
};  // 48 bytes

// ---- points (voxel_downsample, voxelize, normalize) ----
// One descriptor per sample (mirrors PointsSampleDesc in src/ops/points_gpu.rs).
struct RcPointsSample {
  rc_u64 points;       // const float* [n, C]
  rc_i64 n;            // rows
  rc_i64 row_begin;    // first row of this sample in batch-wide per-row / per-voxel arrays (a
                       // multiple of RCP_TILE, so tile row_begin / RCP_TILE + t is the sample's tile t)
  rc_i64 cell_begin;   // dense voxelize "mean": first cell in the scratch grid
  double voxel[3];
  double origin[3];    // anchor="origin" origin, or voxelize range min
  double range_hi[3];  // voxelize range max
  int dims[3];         // voxelize grid
  int anchor_min;      // 1: origin = min bound - voxel / 2, found on the device
};  // 120 bytes

// Per-sample results written by the kernels (mirrors PointsInfo); copied to the host once per batch
// when output sizes depend on the data.
struct RcPointsInfo {
  double origin[3];       // effective grid origin
  rc_i64 cmin[3];         // smallest voxel coordinate (the key is relative to it)
  double sum[3];          // normalize: sum of finite xyz
  rc_u64 r2max;           // normalize: largest squared distance to the centroid (double bits)
  rc_u64 nvalid;          // normalize: rows with finite xyz
  unsigned lo[3], hi[3];  // min / max finite xyz, order-preserving float bits
  int shift[3];           // key = (x << shift0) | (y << shift1) | z, x y z relative to cmin
  int count;              // voxels kept (after min_points and max_voxels)
  int total;              // voxels after min_points, before max_voxels
  int err;                // 0 ok, 1 beyond 2^31 cells along err_axis, 2 key over 63 bits
  int err_axis;
  int nsort;              // rows in the sort (finite, inside the range)
  int npass;              // 8-bit radix passes (>= 1)
  int wide;               // 0: items are key << 30 | row; 1: 64-bit keys and a separate row array
  int local;              // RCP_F_LOCAL: 1 when pass 0 sorted by the key's top 8 bits and points_local
                          // sorted each of those buckets (the sorted keys are then where 2 passes leave them)
  int kbits;              // key bits (the last pass's digit is the top 8 of them)
};  // 160 bytes

// Device buffers of one launch sequence (mirrors PointsBufs).
struct RcPointsBufs {
  rc_u64 samples, info, outs;          // descriptors, per-sample info, [B][4] output pointers
  rc_u64 keys0, keys1;                 // u64 per row: sort keys, ping-pong (pass p writes keys[p & 1])
  rc_u64 rows0, rows1;                 // u32 per row: row indices of wide keys, ping-pong
  rc_u64 hist;                         // u32 [B][8][256]: digit counts of every pass
  rc_u64 stat0, stat1;                 // u32 [tiles][256]: decoupled look-back status, ping-pong
  rc_u64 ctr;                          // u32 [B][10] tile tickets (passes, runs), then the long-voxel count
  rc_u64 vstart, vcount, vcoord, newid; // per voxel (indexed row_begin + voxel id)
  rc_u64 cells_cnt, cells_sum;         // dense "mean" scratch grids
};  // 136 bytes

struct RcPointsParams {
  int num_samples, cols, kind, vmode;  // kind 0 voxel_downsample, 1 voxelize, 2 normalize
  int nmode, min_points, max_points, max_voxels;
  int o_feat, o_cnt, o_coord, o_num;   // output indices (-1: none)
  int pass, last_pass;                 // radix pass of points_pass; the last one launched
  int flags, local_min;                // RCP_F_* variant bits (src/ops/points_gpu.rs); RCP_F_LOCAL from this many rows
  rc_i64 total_tiles, total_rows;
};  // 80 bytes
// ---- counter-based random numbers (mirrors src/rng.rs exactly) ----
// Philox4x32-10; counter = (element, sample, iteration, stream), key = the 64-bit seed.
struct RcU4 { unsigned x, y, z, w; };
__device__ __forceinline__ RcU4 rc_philox(unsigned c0, unsigned c1, unsigned c2, unsigned c3,
                                          unsigned k0, unsigned k1) {
#pragma unroll
  for (int r = 0; r < 10; r++) {
    if (r > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
    unsigned hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    unsigned hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    unsigned n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
  }
  RcU4 o; o.x = c0; o.y = c1; o.z = c2; o.w = c3;
  return o;
}
// Words for element `index` of (seed, iteration, sample, stream): rng::Key::words.
__device__ __forceinline__ RcU4 rc_words(rc_u64 seed, rc_u64 iteration, unsigned sample,
                                         unsigned stream, unsigned index) {
  return rc_philox(index, sample, (unsigned)iteration, stream, (unsigned)seed, (unsigned)(seed >> 32));
}
// 53-bit uniform in [0, 1): rng::uniform_f64.
__device__ __forceinline__ double rc_uniform_f64(unsigned a, unsigned b) {
  return ((double)(a >> 5) * 67108864.0 + (double)(b >> 6)) * (1.0 / 9007199254740992.0);
}
// 24-bit uniform in [0, 1): rng::uniform_f32.
__device__ __forceinline__ float rc_uniform_f32(unsigned a) {
  return (float)(a >> 8) * (1.0f / 16777216.0f);
}
// Two standard normals (Box-Muller in float64): rng::box_muller.
__device__ __forceinline__ void rc_box_muller(RcU4 w, double &z0, double &z1) {
  double u1 = 1.0 - rc_uniform_f64(w.x, w.y);
  double u2 = rc_uniform_f64(w.z, w.w);
  double r = sqrt(-2.0 * log(u1));
  double th = 6.283185307179586 * u2;
  double sn, cs;
  sincos(th, &sn, &cs);
  z0 = r * cs;
  z1 = r * sn;
}
// Two standard normals from two words in float32: rng::box_muller_f32.
__device__ __forceinline__ void rc_box_muller_f32(unsigned a, unsigned b, float &z0, float &z1) {
  float u1 = 1.0f - rc_uniform_f32(a);
  float u2 = rc_uniform_f32(b);
  float r = sqrtf(-2.0f * logf(u1));
  float th = 6.28318530717958647692f * u2;
  z0 = r * cosf(th);
  z1 = r * sinf(th);
}
#define RC_STREAM_NOISE 0x414E0002u
#define RC_STREAM_POINTS_JITTER 0x50410002u
#define RC_STREAM_POINTS_DROP 0x50410004u

// ---- action_noise ----
// One descriptor per sample (mirrors NoiseSampleDesc in src/ops/augment_gpu.rs).
struct RcNoiseSample {
  rc_u64 data;   // const element* [len, C]
  rc_u64 out;    // element* [len, C]
  rc_u64 sigma;  // const double* [C]
  rc_i64 len;    // T
  double a;      // OU coefficient exp(-dt / tau); 0 for white noise
  double b;      // sqrt(1 - a * a)
  int sample;    // index in the batch (the RNG key)
  int apply;     // 0: copy the input unchanged
};  // 56 bytes

struct RcNoiseParams {
  rc_u64 low;        // const double* [C], or 0 for no lower bound
  rc_u64 high;       // const double* [C], or 0
  rc_u64 seed;
  rc_u64 iteration;
  int channels;      // C
  int distribution;  // 0 gaussian, 1 uniform
  int num_samples;
  int pad;
};  // 48 bytes

// ---- points_augment ----
// One descriptor per sample (mirrors PointsSampleDesc in src/ops/augment_gpu.rs).
struct RcAugPointsSample {
  rc_u64 in;          // const float* [n, dims]
  rc_u64 out;         // float* [n, dims]
  rc_u64 transform;   // float* [4, 4]
  rc_u64 mask;        // unsigned char* [n], or 0
  rc_i64 n;           // points
  rc_i64 tile_begin;  // first block of this sample
  float m[12];        // row-major [3, 4]: scale * R | t
  float jitter;       // sigma of the per-point Gaussian jitter (0: none)
  float clip;         // jitter clipped to [-clip, clip] (0: no clip)
  float dropout;      // probability that a point is dropped (mask 0)
  int sample;         // index in the batch
};  // 112 bytes

struct RcAugPointsParams {
  rc_u64 seed;
  rc_u64 iteration;
  int dims;         // 3 + F
  int tile;         // points per block
  int num_samples;
  int pad;
};  // 32 bytes


// ---- align ----
#define RC_ALIGN_MAX_STREAMS 8
// One descriptor per sample (mirrors AlignSampleDesc in src/ops/align_gpu.rs).
struct RcAlignSample {
  rc_u64 out;         // element*  [num_out, total_channels]
  rc_u64 valid;       // unsigned char*  [num_out, num_streams]
  rc_u64 out_ts;      // double* or long long*  [num_out]
  rc_u64 targets;     // explicit reference timestamps [num_out], or 0
  rc_i64 num_out;     // T
  rc_i64 tile_begin;  // first block of this sample in the launch
  double a_f, b_f;    // grid ends, float64 seconds
  rc_i64 a_i, b_i;    // grid ends, int64 nanoseconds
  rc_u64 data[RC_ALIGN_MAX_STREAMS];  // const element*  [len, C_s] per stream
  rc_u64 ts[RC_ALIGN_MAX_STREAMS];    // const double* or const long long*  [len] per stream
  rc_i64 len[RC_ALIGN_MAX_STREAMS];   // rows per stream
  rc_u64 first[RC_ALIGN_MAX_STREAMS];  // each stream's first timestamp (its 8 bytes, double or long long)
  rc_u64 last[RC_ALIGN_MAX_STREAMS];   // each stream's last timestamp
  int block0[RC_ALIGN_MAX_STREAMS];    // the sweep form: each stream's first block in the launch
};  // 432 bytes

// Batch-wide facts of one stream (mirrors AlignStreamDesc).
struct RcAlignStream {
  rc_i64 channels;  // C_s
  rc_i64 offset;    // first fused channel
  double max_gap;   // in the timestamps' unit (s or ns); +inf: no limit
  int method;       // 0 linear, 1 nearest, 2 previous
  int pad;
};  // 32 bytes

struct RcAlignParams {
  double rate;          // target_rate (grid == 0)
  rc_i64 count;         // num_samples (grid == 1)
  rc_u64 chan_map;      // const int2* [2 total_channels + num_quats]: (stream, first fused channel of its quaternion group or -1), then the groups, then (channel in its stream, the stream's channels)
  int num_streams;
  int total_channels;
  int tile;             // targets per block
  int grid;             // 0 rate, 1 count, 2 explicit
  int ts_int;           // 1: int64 nanoseconds, 0: float64 seconds
  int fill;             // 0 hold, 1 nan, 2 zero
  int wxyz;             // quaternion order: 1 wxyz, 0 xyzw
  int num_quats;        // quaternion groups, listed after the channel map as (stream, first fused channel)
  int smem;             // dynamic shared memory bytes per block (the windows' budget)
  int sparse;           // streams with more rows per step than this keep their rows in global memory
  int margin;           // window margin each side: margin + (rows >> margin_shift) rows
  int margin_shift;
  RcAlignStream streams[RC_ALIGN_MAX_STREAMS];
  rc_u64 rec;           // design 3: the items' (i0, i1, w) records (device scratch), else 0
  int design;           // 0 tiled (align.cu), 1 flat, 2 staged, 3 locate + gather (align_flat.cu)
  int pad;
};  // 344 bytes
