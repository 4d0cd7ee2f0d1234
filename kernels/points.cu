// points.cu: voxel_downsample, voxelize and normalize for ragged batches, a few launches per batch.
// common.cuh is prepended by the Rust kernel registry (src/gpu/kernels.rs), points_sort.cu appended
// (the kernels from points_pass on in the list below live there).
//
// Every per-row kernel runs on a grid (gx, num_samples): blockIdx.y is the sample. Voxels without
// dense grids (voxel_downsample and voxelize "sparse") come from a sort, one segment per sample:
//   points_init      per-sample info, histograms, tickets and look-back status reset
//   points_bounds    min / max of finite xyz per sample (and sums for normalize)
//   points_hist      per sample: key layout (origin, smallest coordinate, bits per axis, errors);
//                    per row: the voxel key (x | y | z relative to the smallest coordinate, so key
//                    order is the lexicographic order of (ix, iy, iz)) into the sort items; digit
//                    counts of every pass
//   points_pass      one 8-bit LSD radix pass over (key, row) pairs, stable; one pass per launch,
//                    tiles ranked in one sweep with decoupled look-back (per sample, per digit);
//                    pass 0 drops invalid rows
//   points_local     (RCP_F_LOCAL, samples of 9-24-bit keys whose top-8-bit buckets fit RCP_LCAP)
//                    after pass 0 sorted by the top 8 bits: each bucket sorted in shared memory,
//                    in place of passes 1 and up
//   points_runs      per tile of sorted rows: starts of voxels with >= min_points rows, voxel id
//                    = rank in key order (decoupled look-back again); per voxel its first sorted
//                    row, count and coordinates; per-sample voxel totals
//   points_select    (max_voxels) one block per sample: radix select of the max_voxels-th largest
//                    count, ties kept in voxel order
//   points_finalize  means (voxels of <= RCP_LONG points: one thread adds its rows in row order;
//                    longer: a warp, lane l adds rows l, l + 32, ... in order, then a shuffle tree;
//                    the CPU backend adds in exactly these orders), counts, coordinates, padding,
//                    num_points
// The arithmetic is the CPU backend's (src/ops/points.rs), float64, --fmad=false.

#define RCP_THREADS 256
#define RCP_ITEMS 8
#define RCP_TILE (RCP_THREADS * RCP_ITEMS)
#define RCP_WARPS (RCP_THREADS / 32)
#define RCP_PASSES 8
#define RCP_CTRS 10  // tickets per sample: passes 0-7, points_runs
#define RCP_LONG 32
// points_local (RCP_F_LOCAL): threads, items per thread, the largest bucket it sorts, key bits
#define RCP_LTHREADS 512
#define RCP_LITEMS 16
#define RCP_LCAP (RCP_LTHREADS * RCP_LITEMS)
#define RCP_LMAXBITS 24
#define RCP_LO_INIT 0xff800000u  // order bits of +inf
#define RCP_HI_INIT 0x007fffffu  // order bits of -inf
#define RCP_ST_AGG 0x40000000u   // look-back status: tile aggregate
#define RCP_ST_PRE 0x80000000u   // look-back status: inclusive prefix
#define RCP_ST_VAL 0x3fffffffu
#define RCP_ROW_BITS 30          // narrow sort items: key << 30 | row (rows < 2^30 per sample)
#define RCP_ROW_MASK 0x3fffffffull
#define RCP_NONE 0xffffffffffffffffull  // pass 0 input of a dropped row (no valid item is all ones)
// Variant bits of RcPointsParams::flags (the host chooses; src/ops/points_gpu.rs).
#define RCP_F_LOOKW 1u   // points_runs: warp 0 scans and looks back over 32 tiles per step
#define RCP_F_DIST 2u    // counts = distance to the next voxel's start (min_points 1, no max_voxels)
#define RCP_F_LOCAL 4u   // MSD pass then buckets sorted in shared memory where they fit (rcp_local, points_local)
#define RCP_F_NOINIT 8u  // no points_init: the host sent the info, points_bounds zeroes the rest
#define RCP_F_AGGONLY 16u  // tests: later tiles publish only aggregates (every look-back walks to tile 0)
#define RCP_F_SLEEP 32u  // points_pass: a waiting look-back sleeps 64 ns between reads

__device__ __forceinline__ unsigned rcp_ord(float f) {
  unsigned u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float rcp_unord(unsigned u) {
  return __uint_as_float((u & 0x80000000u) ? (u & 0x7fffffffu) : ~u);
}
__device__ __forceinline__ bool rcp_fin(float x) {
  return (__float_as_uint(x) & 0x7f800000u) != 0x7f800000u;
}

// Lanes of the warp holding the same value d of nbits <= MAXBITS bits (nbits uniform): one ballot
// per bit (__match_any_sync is far slower).
template <int MAXBITS>
__device__ __forceinline__ unsigned rcp_match_bits(unsigned d, int nbits) {
  unsigned m = 0xffffffffu;
#pragma unroll
  for (int bit = 0; bit < MAXBITS; bit++) {
    if (bit < nbits) {
      const bool on = (d >> bit) & 1u;
      const unsigned v = __ballot_sync(0xffffffffu, on);
      m &= on ? v : ~v;
    }
  }
  return m;
}
// The same for a 9-bit value (an 8-bit digit, or 256 for "no digit").
__device__ __forceinline__ unsigned rcp_match9(unsigned d) { return rcp_match_bits<9>(d, 9); }

// Block-wide exclusive scan of one int per thread (blockDim.x a multiple of 32, <= 1024).
__device__ int rcp_scan(int x, int *total) {
  __shared__ int ws[32];
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  int v = x;
  for (int o = 1; o < 32; o <<= 1) {
    int y = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += y;
  }
  if (lane == 31) ws[w] = v;
  __syncthreads();
  if (w == 0) {
    int s = lane < nw ? ws[lane] : 0;
    for (int o = 1; o < 32; o <<= 1) {
      int y = __shfl_up_sync(0xffffffffu, s, o);
      if (lane >= o) s += y;
    }
    if (lane < nw) ws[lane] = s;
  }
  __syncthreads();
  int excl = v - x + (w > 0 ? ws[w - 1] : 0);
  *total = ws[nw - 1];
  __syncthreads();
  return excl;
}

// The same for one u64 per thread.
__device__ rc_u64 rcp_scan64(rc_u64 x, rc_u64 *total) {
  __shared__ rc_u64 ws64[32];
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  rc_u64 v = x;
  for (int o = 1; o < 32; o <<= 1) {
    rc_u64 y = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += y;
  }
  if (lane == 31) ws64[w] = v;
  __syncthreads();
  if (w == 0) {
    rc_u64 s = lane < nw ? ws64[lane] : 0ull;
    for (int o = 1; o < 32; o <<= 1) {
      rc_u64 y = __shfl_up_sync(0xffffffffu, s, o);
      if (lane >= o) s += y;
    }
    if (lane < nw) ws64[lane] = s;
  }
  __syncthreads();
  rc_u64 excl = v - x + (w > 0 ? ws64[w - 1] : 0ull);
  *total = ws64[nw - 1];
  __syncthreads();
  return excl;
}

__device__ __forceinline__ const RcPointsSample &rcp_sample(const RcPointsBufs &b) {
  return ((const RcPointsSample *)b.samples)[blockIdx.y];
}
__device__ __forceinline__ RcPointsInfo &rcp_info(const RcPointsBufs &b, int i) {
  return ((RcPointsInfo *)b.info)[i];
}

// Key layout of a sample.
struct RcpLay {
  double origin[3];
  rc_i64 cmin[3];
  int shift[3];
  int npass, wide, err, err_axis, bits;
};

// The voxel coordinate of row `r` on a grid at `origin` (false: the row is dropped).
// voxel_downsample: finite xyz; voxelize: finite and inside [range min, range max) on every axis,
// clamped to the grid.
__device__ __forceinline__ bool rcp_coord(const RcPointsSample &s, const double *origin,
                                          const RcPointsParams &p, const float *r, rc_i64 q[3]) {
  if (!(rcp_fin(r[0]) && rcp_fin(r[1]) && rcp_fin(r[2]))) return false;
  for (int a = 0; a < 3; a++) {
    double x = (double)r[a];
    if (p.kind == 1) {
      if (!(x >= s.origin[a] && x < s.range_hi[a])) return false;
      rc_i64 c = (rc_i64)floor((x - s.origin[a]) / s.voxel[a]);
      q[a] = c < (rc_i64)s.dims[a] - 1 ? c : (rc_i64)s.dims[a] - 1;
    } else {
      q[a] = (rc_i64)floor((x - origin[a]) / s.voxel[a]);
    }
  }
  return true;
}

// The sort key of a row (false: dropped).
template <typename L>
__device__ __forceinline__ bool rcp_key(const RcPointsSample &s, const L &l, const RcPointsParams &p,
                                        const float *r, rc_u64 *key) {
  rc_i64 q[3];
  if (l.err || !rcp_coord(s, l.origin, p, r, q)) return false;
  *key = ((rc_u64)(q[0] - l.cmin[0]) << l.shift[0]) | ((rc_u64)(q[1] - l.cmin[1]) << l.shift[1]) |
         (rc_u64)(q[2] - l.cmin[2]);
  return true;
}

__device__ __forceinline__ int rcp_bits(rc_i64 e) { return 64 - __clzll((long long)e); }

// Origin, smallest coordinate, shifts, passes and errors of a sample (after points_bounds).
__device__ void rcp_layout(const RcPointsSample &s, const RcPointsInfo &f, const RcPointsParams &p, RcpLay &l) {
  int bits[3] = {0, 0, 0};
  l.err = 0;
  l.err_axis = 0;
  for (int a = 0; a < 3; a++) {
    l.origin[a] = s.origin[a];
    l.cmin[a] = 0;
  }
  if (p.kind == 1) {
    for (int a = 0; a < 3; a++) bits[a] = rcp_bits((rc_i64)s.dims[a] - 1);
  } else if (f.lo[0] != RCP_LO_INIT) {  // some finite row
    for (int a = 0; a < 3; a++) {
      double lo = (double)rcp_unord(f.lo[a]), hi = (double)rcp_unord(f.hi[a]);
      l.origin[a] = s.anchor_min ? lo - s.voxel[a] * 0.5 : s.origin[a];
      double clo = floor((lo - l.origin[a]) / s.voxel[a]);
      double chi = floor((hi - l.origin[a]) / s.voxel[a]);
      if (!(clo >= -2147483648.0 && chi < 2147483648.0)) {
        l.err = 1;
        l.err_axis = a;
        break;
      }
      l.cmin[a] = (rc_i64)clo;
      bits[a] = rcp_bits((rc_i64)chi - (rc_i64)clo);
    }
  }
  int total = bits[0] + bits[1] + bits[2];
  if (!l.err && total > 63) l.err = 2;
  if (l.err) total = 0;
  l.shift[0] = bits[1] + bits[2];
  l.shift[1] = bits[2];
  l.shift[2] = 0;
  l.npass = total > 8 ? (total + 7) / 8 : 1;
  l.wide = total > 64 - RCP_ROW_BITS;
  l.bits = total;
}

// The lowest key bit of pass q's 8-bit digit: 8 q, but the last pass's digit is the key's top 8
// bits (overlapping the digit below when the key bits are not a multiple of 8: a stable LSD sort
// by overlapping digits still sorts), so that its histogram is the MSD one RCP_F_LOCAL needs.
__device__ __forceinline__ int rcp_dshift(int q, int npass, int kbits) {
  return (q == npass - 1 && kbits > 8) ? kbits - 8 : 8 * q;
}

// Thread t0 of `stride`: zero pass 0's look-back status, the histograms and the tickets; with
// `info`, set the per-sample info to its initial state (else the host sent it).
__device__ __forceinline__ void rcp_reset(const RcPointsBufs &b, const RcPointsParams &p, rc_i64 t0, rc_i64 stride, bool info) {
  if (b.stat0)
    for (rc_i64 i = t0; i < p.total_tiles * 64; i += stride) ((uint4 *)b.stat0)[i] = make_uint4(0u, 0u, 0u, 0u);
  if (b.hist)
    for (rc_i64 i = t0; i < (rc_i64)p.num_samples * (RCP_PASSES * 256 / 4); i += stride)
      ((uint4 *)b.hist)[i] = make_uint4(0u, 0u, 0u, 0u);
  if (b.ctr)
    for (rc_i64 i = t0; i < (rc_i64)p.num_samples * RCP_CTRS; i += stride) ((unsigned *)b.ctr)[i] = 0u;
  if (!info) return;
  for (rc_i64 i = t0; i < p.num_samples; i += stride) {
    RcPointsInfo &f = rcp_info(b, (int)i);
    for (int a = 0; a < 3; a++) {
      f.origin[a] = 0.0;
      f.cmin[a] = 0;
      f.sum[a] = 0.0;
      f.lo[a] = RCP_LO_INIT;
      f.hi[a] = RCP_HI_INIT;
      f.shift[a] = 0;
    }
    f.r2max = 0ull;
    f.nvalid = 0ull;
    f.count = 0;
    f.total = 0;
    f.err = 0;
    f.err_axis = 0;
    f.nsort = 0;
    f.npass = 1;
    f.wide = 0;
    f.local = 0;
    f.kbits = 0;
  }
}

extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_init(RcPointsBufs b, RcPointsParams p) {
  rcp_reset(b, p, (rc_i64)blockIdx.x * blockDim.x + threadIdx.x, (rc_i64)gridDim.x * blockDim.x, true);
}

// Min / max of finite xyz (and, for normalize, their sums and count): warp, then block reduced,
// then one set of atomics per block. U rows per thread and step, their loads first.
template <int U>
__device__ __forceinline__ void rcp_bounds(const RcPointsBufs &b, const RcPointsParams &p) {
  __shared__ unsigned sh_lo[RCP_WARPS][3], sh_hi[RCP_WARPS][3];
  __shared__ double sh_sum[RCP_WARPS][3];
  __shared__ unsigned long long sh_nv[RCP_WARPS];
  const RcPointsSample &s = rcp_sample(b);
  const float *pts = (const float *)s.points;
  const rc_i64 n = s.n;
  const int C = p.cols;
  unsigned lo[3] = {RCP_LO_INIT, RCP_LO_INIT, RCP_LO_INIT}, hi[3] = {RCP_HI_INIT, RCP_HI_INIT, RCP_HI_INIT};
  double sum[3] = {0.0, 0.0, 0.0};
  unsigned long long nv = 0ull;
  if (p.flags & RCP_F_NOINIT) rcp_reset(b, p, ((rc_i64)blockIdx.y * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x,
                                        (rc_i64)gridDim.x * gridDim.y * blockDim.x, false);
  const rc_i64 step = (rc_i64)gridDim.x * blockDim.x * U;
  for (rc_i64 r0 = (rc_i64)blockIdx.x * blockDim.x * U + threadIdx.x; r0 < n; r0 += step) {
    float v[U][3];
#pragma unroll
    for (int u = 0; u < U; u++) {
      const rc_i64 r = r0 + u * RCP_THREADS;
#pragma unroll
      for (int a = 0; a < 3; a++) v[u][a] = r < n ? pts[r * C + a] : __int_as_float(0x7f800000);  // +inf: skipped
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
      if (!(rcp_fin(v[u][0]) && rcp_fin(v[u][1]) && rcp_fin(v[u][2]))) continue;
#pragma unroll
      for (int a = 0; a < 3; a++) {
        unsigned o = rcp_ord(v[u][a]);
        lo[a] = o < lo[a] ? o : lo[a];
        hi[a] = o > hi[a] ? o : hi[a];
        if (p.kind == 2) sum[a] += (double)v[u][a];
      }
      nv++;
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
#pragma unroll
    for (int a = 0; a < 3; a++) {
      unsigned l = __shfl_down_sync(0xffffffffu, lo[a], o), h = __shfl_down_sync(0xffffffffu, hi[a], o);
      lo[a] = l < lo[a] ? l : lo[a];
      hi[a] = h > hi[a] ? h : hi[a];
      if (p.kind == 2) sum[a] += __shfl_down_sync(0xffffffffu, sum[a], o);
    }
    nv += __shfl_down_sync(0xffffffffu, nv, o);
  }
  const int w = threadIdx.x >> 5;
  if ((threadIdx.x & 31) == 0) {
    for (int a = 0; a < 3; a++) {
      sh_lo[w][a] = lo[a];
      sh_hi[w][a] = hi[a];
      sh_sum[w][a] = sum[a];
    }
    sh_nv[w] = nv;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int k = 1; k < RCP_WARPS; k++) {
      for (int a = 0; a < 3; a++) {
        lo[a] = sh_lo[k][a] < lo[a] ? sh_lo[k][a] : lo[a];
        hi[a] = sh_hi[k][a] > hi[a] ? sh_hi[k][a] : hi[a];
        sum[a] += sh_sum[k][a];
      }
      nv += sh_nv[k];
    }
    if (nv > 0) {
      RcPointsInfo &f = rcp_info(b, blockIdx.y);
      for (int a = 0; a < 3; a++) {
        atomicMin(&f.lo[a], lo[a]);
        atomicMax(&f.hi[a], hi[a]);
        if (p.kind == 2) atomicAdd(&f.sum[a], sum[a]);
      }
      if (p.kind == 2) atomicAdd(&f.nvalid, nv);
    }
  }
}
extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_bounds(RcPointsBufs b, RcPointsParams p) { rcp_bounds<1>(b, p); }
extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_bounds4(RcPointsBufs b, RcPointsParams p) { rcp_bounds<4>(b, p); }

// Per sample (every block works it out; block 0 stores it): the key layout. Per row: its sort item
// (keys1 / rows1, pass 0's input) and the counts of its digits in every pass (shared atomics, then
// one global atomic per block and bin); the number of rows in the sort. U rows per thread and step,
// their loads first (warp w, step base: rows base + u * RCP_THREADS + w * 32 + lane).
template <int U>
__device__ __forceinline__ void rcp_hist(const RcPointsBufs &b, const RcPointsParams &p) {
  __shared__ RcpLay L;
  __shared__ unsigned h[RCP_PASSES * 256];
  __shared__ unsigned sh_nv;
  const RcPointsSample &s = rcp_sample(b);
  RcPointsInfo &f = rcp_info(b, blockIdx.y);
  for (int i = threadIdx.x; i < RCP_PASSES * 256; i += blockDim.x) h[i] = 0u;
  if (threadIdx.x == 0) {
    rcp_layout(s, f, p, L);
    sh_nv = 0u;
    if (blockIdx.x == 0) {
      for (int a = 0; a < 3; a++) {
        f.origin[a] = L.origin[a];
        f.cmin[a] = L.cmin[a];
        f.shift[a] = L.shift[a];
      }
      f.npass = L.npass;
      f.kbits = L.bits;
      f.wide = L.wide;
      f.err = L.err;
      f.err_axis = L.err_axis;
    }
  }
  __syncthreads();
  const float *pts = (const float *)s.points;
  const rc_i64 n = s.n;
  // top: rcp_dshift of the last pass, hoisted out of the per-row loop below.
  const int np = L.npass, lane = threadIdx.x & 31, C = p.cols, top = rcp_dshift(np - 1, np, L.bits);
  unsigned cnt = 0u;
  const rc_i64 stride = (rc_i64)gridDim.x * blockDim.x * U;
  for (rc_i64 base = (rc_i64)blockIdx.x * blockDim.x * U + (threadIdx.x & ~31); base < n; base += stride) {
    float xyz[U][3];
#pragma unroll
    for (int u = 0; u < U; u++) {
      const rc_i64 r = base + u * RCP_THREADS + lane;
#pragma unroll
      for (int a = 0; a < 3; a++) xyz[u][a] = r < n ? pts[r * C + a] : 0.f;
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
      const rc_i64 r = base + u * RCP_THREADS + lane;
      rc_u64 key = 0ull;
      bool ok = r < n && rcp_key(s, L, p, xyz[u], &key);
      if (r < n) {  // pass 0's input: the sort item, or RCP_NONE for a dropped row
        ((rc_u64 *)b.keys1)[s.row_begin + r] = !ok ? RCP_NONE : L.wide ? key : (key << RCP_ROW_BITS) | (rc_u64)r;
        if (L.wide) ((unsigned *)b.rows1)[s.row_begin + r] = (unsigned)r;
      }
      cnt += ok ? 1u : 0u;
      const unsigned all_ok = __ballot_sync(0xffffffffu, ok);
      for (int q = 0; q < np; q++) {
        const unsigned d = ok ? (unsigned)(key >> (q == np - 1 ? top : 8 * q)) & 255u : 256u;
        // A warp of one digit (coherent scans, high digits): one atomic; else one per lane (random
        // digits rarely collide).
        if (all_ok == 0xffffffffu && __all_sync(0xffffffffu, d == __shfl_sync(0xffffffffu, d, 0))) {
          if (lane == 0) atomicAdd(&h[q * 256 + d], 32u);
        } else if (d < 256u) {
          atomicAdd(&h[q * 256 + d], 1u);
        }
      }
    }
  }
  for (int o = 16; o > 0; o >>= 1) cnt += __shfl_down_sync(0xffffffffu, cnt, o);
  if (lane == 0 && cnt) atomicAdd(&sh_nv, cnt);
  __syncthreads();
  unsigned *gh = (unsigned *)b.hist + (rc_i64)blockIdx.y * RCP_PASSES * 256;
  for (int i = threadIdx.x; i < np * 256; i += blockDim.x)
    if (h[i]) atomicAdd(&gh[i], h[i]);
  if (threadIdx.x == 0 && sh_nv) atomicAdd(&f.nsort, (int)sh_nv);
}
extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_hist(RcPointsBufs b, RcPointsParams p) { rcp_hist<1>(b, p); }
extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_hist4(RcPointsBufs b, RcPointsParams p) { rcp_hist<4>(b, p); }

// ---- voxelize, dense modes ----
__device__ __forceinline__ rc_i64 rcp_cells(const RcPointsSample &s) {
  return (rc_i64)s.dims[0] * s.dims[1] * s.dims[2];
}

extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_dense_zero(RcPointsBufs b, RcPointsParams p) {
  const RcPointsSample &s = rcp_sample(b);
  const rc_u64 *outs = (const rc_u64 *)b.outs + (rc_i64)blockIdx.y * 4;
  rc_i64 cells = rcp_cells(s);
  for (rc_i64 c = (rc_i64)blockIdx.x * blockDim.x + threadIdx.x; c < cells; c += (rc_i64)gridDim.x * blockDim.x) {
    if (p.vmode == 0) ((unsigned char *)outs[0])[c] = 0;
    else if (p.vmode == 2) ((int *)outs[0])[c] = 0;
    else {
      ((unsigned *)b.cells_cnt)[s.cell_begin + c] = 0u;
      for (int j = 0; j < p.cols; j++) ((double *)b.cells_sum)[(s.cell_begin + c) * p.cols + j] = 0.0;
    }
  }
}

extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_dense_acc(RcPointsBufs b, RcPointsParams p) {
  const RcPointsSample &s = rcp_sample(b);
  const RcPointsInfo &f = rcp_info(b, blockIdx.y);
  const rc_u64 *outs = (const rc_u64 *)b.outs + (rc_i64)blockIdx.y * 4;
  const float *pts = (const float *)s.points;
  for (rc_i64 r = (rc_i64)blockIdx.x * blockDim.x + threadIdx.x; r < s.n; r += (rc_i64)gridDim.x * blockDim.x) {
    const float *row = pts + r * p.cols;
    rc_i64 q[3];
    if (!rcp_coord(s, f.origin, p, row, q)) continue;
    rc_i64 c = (q[0] * s.dims[1] + q[1]) * s.dims[2] + q[2];
    if (p.vmode == 0) ((unsigned char *)outs[0])[c] = 1;
    else if (p.vmode == 2) atomicAdd((int *)outs[0] + c, 1);
    else {
      atomicAdd((unsigned *)b.cells_cnt + s.cell_begin + c, 1u);
      for (int j = 0; j < p.cols; j++) atomicAdd((double *)b.cells_sum + (s.cell_begin + c) * p.cols + j, (double)row[j]);
    }
  }
}

extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_dense_mean(RcPointsBufs b, RcPointsParams p) {
  const RcPointsSample &s = rcp_sample(b);
  const rc_u64 *outs = (const rc_u64 *)b.outs + (rc_i64)blockIdx.y * 4;
  float *out = (float *)outs[0];
  rc_i64 cells = rcp_cells(s);
  for (rc_i64 c = (rc_i64)blockIdx.x * blockDim.x + threadIdx.x; c < cells; c += (rc_i64)gridDim.x * blockDim.x) {
    unsigned n = ((const unsigned *)b.cells_cnt)[s.cell_begin + c];
    for (int j = 0; j < p.cols; j++) {
      double x = ((const double *)b.cells_sum)[(s.cell_begin + c) * p.cols + j];
      out[c * p.cols + j] = n ? (float)(x / (double)n) : 0.f;
    }
  }
}

// ---- normalize ----
__device__ __forceinline__ void rcp_centre(const RcPointsInfo &f, int mode, double c[3]) {
  for (int a = 0; a < 3; a++) {
    if (f.nvalid == 0ull) c[a] = 0.0;
    else if (mode == 2) c[a] = ((double)rcp_unord(f.lo[a]) + (double)rcp_unord(f.hi[a])) * 0.5;
    else c[a] = f.sum[a] / (double)f.nvalid;
  }
}

extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_radius(RcPointsBufs b, RcPointsParams p) {
  const RcPointsSample &s = rcp_sample(b);
  RcPointsInfo &f = rcp_info(b, blockIdx.y);
  double c[3];
  rcp_centre(f, p.nmode, c);
  const float *pts = (const float *)s.points;
  double m = 0.0;
  for (rc_i64 r = (rc_i64)blockIdx.x * blockDim.x + threadIdx.x; r < s.n; r += (rc_i64)gridDim.x * blockDim.x) {
    const float *row = pts + r * p.cols;
    if (!(rcp_fin(row[0]) && rcp_fin(row[1]) && rcp_fin(row[2]))) continue;
    double dx = (double)row[0] - c[0], dy = (double)row[1] - c[1], dz = (double)row[2] - c[2];
    double d = dx * dx + dy * dy + dz * dz;
    m = d > m ? d : m;
  }
  for (int o = 16; o > 0; o >>= 1) {
    double y = __shfl_down_sync(0xffffffffu, m, o);
    m = y > m ? y : m;
  }
  // Non-negative doubles order like their bits.
  if ((threadIdx.x & 31) == 0 && m > 0.0) atomicMax(&f.r2max, (rc_u64)__double_as_longlong(m));
}

extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_apply(RcPointsBufs b, RcPointsParams p) {
  const RcPointsSample &s = rcp_sample(b);
  const RcPointsInfo &f = rcp_info(b, blockIdx.y);
  const rc_u64 *outs = (const rc_u64 *)b.outs + (rc_i64)blockIdx.y * 4;
  double c[3];
  rcp_centre(f, p.nmode, c);
  double sc = 1.0;
  if (f.nvalid > 0ull) {
    if (p.nmode == 1) sc = sqrt(__longlong_as_double((long long)f.r2max));
    else if (p.nmode == 2) {
      sc = 0.0;
      for (int a = 0; a < 3; a++) {
        double side = (double)rcp_unord(f.hi[a]) - (double)rcp_unord(f.lo[a]);
        sc = side > sc ? side : sc;
      }
    }
  }
  if (!(sc > 0.0 && sc <= 1.7976931348623157e308)) sc = 1.0;
  const float *pts = (const float *)s.points;
  float *out = (float *)outs[0];
  const int C = p.cols;
  rc_i64 t0 = (rc_i64)blockIdx.x * blockDim.x + threadIdx.x;
  if (t0 == 0) {
    for (int a = 0; a < 3; a++) ((float *)outs[1])[a] = (float)c[a];
    *(float *)outs[2] = (float)sc;
  }
  rc_i64 total = s.n * C;
  for (rc_i64 e = t0; e < total; e += (rc_i64)gridDim.x * blockDim.x) {
    int j = (int)(e % C);
    float x = pts[e];
    out[e] = j < 3 ? (float)(((double)x - c[j]) / sc) : x;
  }
}
