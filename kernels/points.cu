// points.cu: voxel_downsample, voxelize and normalize for ragged batches, a few launches per batch.
// common.cuh is prepended by the Rust kernel registry (src/gpu/kernels.rs).
//
// Every per-row kernel runs on a grid (gx, num_samples): blockIdx.y is the sample, blocks stride
// over the sample's tiles of RCP_TILE rows. Voxels without dense grids (voxel_downsample and
// voxelize "sparse"):
//   points_init      hash tables empty, per-sample info reset
//   points_bounds    min / max of finite xyz per sample (and sums for normalize)
//   points_prep      per sample: grid origin, smallest voxel coordinate, key bit layout, errors
//   points_insert    per row: 63-bit voxel key, open-addressing insert (linear probing, CAS), count
//                    and first row per slot with atomics (a warp's runs of rows of one voxel once)
//   points_count     per tile: a bit per row that is the first of a voxel with >= min_points
//                    points; float64 atomic sums of every column into the first row's sums
//   points_scan      one block: per-sample exclusive scan of the tile counts -> voxel totals
//   points_assign    voxel id = rank of its first row among first rows (first-appearance order,
//                    the CPU backend's order); per-voxel count, first row, coordinates
//   points_select    (max_voxels) one block per sample: radix select of the max_voxels-th largest
//                    count, ties kept in voxel order
//   points_finalize  means in float32, counts, coordinates, padding, num_points
// The arithmetic is the CPU backend's (src/ops/points.rs), float64, --fmad=false.

#define RCP_THREADS 256
#define RCP_ITEMS 8
#define RCP_TILE (RCP_THREADS * RCP_ITEMS)
#define RCP_EMPTY 0xffffffffffffffffull
#define RCP_LO_INIT 0xff800000u  // order bits of +inf
#define RCP_HI_INIT 0x007fffffu  // order bits of -inf

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
__device__ __forceinline__ rc_u64 rcp_hash(rc_u64 k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  return k ^ (k >> 33);
}

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

__device__ __forceinline__ const RcPointsSample &rcp_sample(const RcPointsBufs &b) {
  return ((const RcPointsSample *)b.samples)[blockIdx.y];
}
__device__ __forceinline__ RcPointsInfo &rcp_info(const RcPointsBufs &b, int i) {
  return ((RcPointsInfo *)b.info)[i];
}

// The voxel coordinate of row `r` (false: the row is dropped). voxel_downsample: finite xyz;
// voxelize: finite and inside [range min, range max) on every axis, clamped to the grid.
__device__ __forceinline__ bool rcp_coord(const RcPointsSample &s, const RcPointsInfo &inf,
                                          const RcPointsParams &p, const float *r, rc_i64 q[3]) {
  if (!(rcp_fin(r[0]) && rcp_fin(r[1]) && rcp_fin(r[2]))) return false;
  for (int a = 0; a < 3; a++) {
    double x = (double)r[a];
    if (p.kind == 1) {
      if (!(x >= s.origin[a] && x < s.range_hi[a])) return false;
      rc_i64 c = (rc_i64)floor((x - s.origin[a]) / s.voxel[a]);
      q[a] = c < (rc_i64)s.dims[a] - 1 ? c : (rc_i64)s.dims[a] - 1;
    } else {
      q[a] = (rc_i64)floor((x - inf.origin[a]) / s.voxel[a]);
    }
  }
  return true;
}

// Hash table entry, 16 bytes (one sector): the key; the row count; the smallest row of the voxel.
struct RcpEntry {
  rc_u64 key;
  unsigned cnt;
  int first;
};

extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_init(RcPointsBufs b, RcPointsParams p) {
  rc_i64 stride = (rc_i64)gridDim.x * blockDim.x;
  rc_i64 t0 = (rc_i64)blockIdx.x * blockDim.x + threadIdx.x;
  ulonglong2 e0;
  e0.x = RCP_EMPTY;
  e0.y = 0x7fffffff00000000ull;  // cnt 0, first INT_MAX
  for (rc_i64 i = t0; i < p.total_slots; i += stride) ((ulonglong2 *)b.table)[i] = e0;
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
    f.pad = 0;
  }
}

// Min / max of finite xyz (and, for normalize, their sums and count): warp, then block reduced,
// then one set of atomics per block.
extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_bounds(RcPointsBufs b, RcPointsParams p) {
  __shared__ unsigned sh_lo[RCP_THREADS / 32][3], sh_hi[RCP_THREADS / 32][3];
  __shared__ double sh_sum[RCP_THREADS / 32][3];
  __shared__ unsigned long long sh_nv[RCP_THREADS / 32];
  const RcPointsSample &s = rcp_sample(b);
  const float *pts = (const float *)s.points;
  const rc_i64 n = s.n;
  const int C = p.cols;
  unsigned lo[3] = {RCP_LO_INIT, RCP_LO_INIT, RCP_LO_INIT}, hi[3] = {RCP_HI_INIT, RCP_HI_INIT, RCP_HI_INIT};
  double sum[3] = {0.0, 0.0, 0.0};
  unsigned long long nv = 0ull;
  for (rc_i64 r = (rc_i64)blockIdx.x * blockDim.x + threadIdx.x; r < n; r += (rc_i64)gridDim.x * blockDim.x) {
    const float *row = pts + r * C;
    float x = row[0], y = row[1], z = row[2];
    if (!(rcp_fin(x) && rcp_fin(y) && rcp_fin(z))) continue;
    float v[3] = {x, y, z};
#pragma unroll
    for (int a = 0; a < 3; a++) {
      unsigned o = rcp_ord(v[a]);
      lo[a] = o < lo[a] ? o : lo[a];
      hi[a] = o > hi[a] ? o : hi[a];
      if (p.kind == 2) sum[a] += (double)v[a];
    }
    nv++;
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
    for (int k = 1; k < RCP_THREADS / 32; k++) {
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

// One thread per sample: origin, smallest coordinate, key layout; the 2^31 / 63-bit checks.
extern "C" __global__ void points_prep(RcPointsBufs b, RcPointsParams p) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= p.num_samples) return;
  const RcPointsSample &s = ((const RcPointsSample *)b.samples)[i];
  RcPointsInfo &f = rcp_info(b, i);
  int bits[3];
  if (p.kind == 1) {
    for (int a = 0; a < 3; a++) {
      f.origin[a] = s.origin[a];
      f.cmin[a] = 0;
      bits[a] = 64 - __clzll((long long)(s.dims[a] - 1));
    }
  } else {
    if (f.lo[0] == RCP_LO_INIT) return;  // no finite row
    for (int a = 0; a < 3; a++) {
      double lo = (double)rcp_unord(f.lo[a]), hi = (double)rcp_unord(f.hi[a]);
      f.origin[a] = s.anchor_min ? lo - s.voxel[a] * 0.5 : s.origin[a];
      double clo = floor((lo - f.origin[a]) / s.voxel[a]);
      double chi = floor((hi - f.origin[a]) / s.voxel[a]);
      if (!(clo >= -2147483648.0 && chi < 2147483648.0)) {
        f.err = 1;
        f.err_axis = a;
        return;
      }
      f.cmin[a] = (rc_i64)clo;
      bits[a] = 64 - __clzll((long long)((rc_i64)chi - (rc_i64)clo));
    }
  }
  if (bits[0] + bits[1] + bits[2] > 63) {
    f.err = 2;
    return;
  }
  f.shift[0] = bits[1] + bits[2];
  f.shift[1] = bits[2];
  f.shift[2] = 0;
}

// Lane of the first lane of my run of equal values (runs: maximal sets of consecutive lanes with
// one value), and the last lane of it; `diff_prev`: my value differs from lane - 1's.
__device__ __forceinline__ void rcp_run(bool diff_prev, bool diff_next, int lane, int *head, int *tail) {
  unsigned heads = __ballot_sync(0xffffffffu, diff_prev);
  unsigned tails = __ballot_sync(0xffffffffu, diff_next);
  *head = 31 - __clz(heads & (0xffffffffu >> (31 - lane)));
  *tail = lane + __ffs(tails >> lane) - 1;
}

// Per row: the voxel key and its slot (linear probing, CAS on the key); rows of a warp that fall
// in one voxel one after the other (LiDAR scans) are inserted once, by the first of them.
extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_insert(RcPointsBufs b, RcPointsParams p) {
  const RcPointsSample &s = rcp_sample(b);
  const RcPointsInfo &fi = rcp_info(b, blockIdx.y);
  const float *pts = (const float *)s.points;
  RcpEntry *T = (RcpEntry *)b.table + s.table_begin;
  const rc_u64 mask = (rc_u64)s.table_mask;
  int *pslot = (int *)b.pslot + s.row_begin;
  const rc_i64 n = s.n;
  const int err = fi.err;
  const rc_i64 cmin0 = fi.cmin[0], cmin1 = fi.cmin[1], cmin2 = fi.cmin[2];
  const int sh0 = fi.shift[0], sh1 = fi.shift[1];
  const int lane = threadIdx.x & 31;
  const rc_i64 stride = (rc_i64)gridDim.x * blockDim.x;
  for (rc_i64 base = (rc_i64)blockIdx.x * blockDim.x + (threadIdx.x & ~31); base < n; base += stride) {
    rc_i64 r = base + lane;
    rc_u64 key = RCP_EMPTY;
    rc_i64 q[3];
    if (r < n && !err && rcp_coord(s, fi, p, pts + r * p.cols, q))
      key = ((rc_u64)(q[0] - cmin0) << sh0) | ((rc_u64)(q[1] - cmin1) << sh1) | (rc_u64)(q[2] - cmin2);
    rc_u64 kp = __shfl_up_sync(0xffffffffu, key, 1), kn = __shfl_down_sync(0xffffffffu, key, 1);
    int head, tail;
    rcp_run(lane == 0 || kp != key, lane == 31 || kn != key, lane, &head, &tail);
    int slot = -1;
    if (lane == head && key != RCP_EMPTY) {
      rc_u64 h = rcp_hash(key) & mask;
      int first;
      while (true) {
        // One 16-byte load: key and first row. A stale copy is harmless: a key never changes once
        // set (a stale empty slot only costs a CAS) and first only decreases.
        ulonglong2 e = *(const ulonglong2 *)&T[h];
        first = (int)(e.y >> 32);
        if (e.x == key) break;
        if (e.x == RCP_EMPTY) {
          rc_u64 prev = atomicCAS(&T[h].key, RCP_EMPTY, key);
          if (prev == RCP_EMPTY || prev == key) break;
        }
        h = (h + 1) & mask;
      }
      atomicAdd(&T[h].cnt, (unsigned)(tail - head + 1));
      if (first > (int)r) atomicMin(&T[h].first, (int)r);
      slot = (int)h;
    }
    slot = __shfl_sync(0xffffffffu, slot, head);
    if (r < n) {
      pslot[r] = slot;
      // The row's sums, zeroed: points_count adds each voxel's rows into those of its first row.
      double *sm = (double *)b.sums + (s.row_begin + r) * p.cols;
      for (int j = 0; j < p.cols; j++) sm[j] = 0.0;
    }
  }
}

// 1 when row r is the first row of a voxel that has at least min_points points.
__device__ __forceinline__ int rcp_is_first(const RcPointsBufs &b, const RcPointsSample &s,
                                            const RcPointsParams &p, rc_i64 r) {
  if (r >= s.n) return 0;
  int slot = ((const int *)b.pslot)[s.row_begin + r];
  if (slot < 0) return 0;
  const RcpEntry &e = ((const RcpEntry *)b.table)[s.table_begin + slot];
  uint2 cf = *(const uint2 *)&e.cnt;
  return (int)cf.y == (int)r && cf.x >= (unsigned)p.min_points;
}

// Tile index of a sample's first tile in blk_cnt / blk_off: the host rounds every sample's
// row_begin up to a multiple of RCP_TILE, so tiles of different samples never share an index.
__device__ __forceinline__ rc_i64 rcp_tile0(const RcPointsSample &s) {
  return s.row_begin / RCP_TILE;
}

// Per tile: one bit per row (first row of a kept voxel) into `flags`, the tile's count into blk_cnt;
// a first row's pslot becomes its voxel's row count; float64 atomic sums of every column of the
// rows of a kept voxel into the sums of its first row (runs of rows of one voxel within a warp are
// summed with shuffles first and added once).
// Row of thread t in round k of tile T: T * RCP_TILE + k * RCP_THREADS + t.
extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_count(RcPointsBufs b, RcPointsParams p) {
  __shared__ int sh[RCP_THREADS / 32];
  const RcPointsSample &s = rcp_sample(b);
  unsigned *flags = (unsigned *)b.flags + s.row_begin / 32;
  int *pslot = (int *)b.pslot + s.row_begin;
  const RcpEntry *T = (const RcpEntry *)b.table + s.table_begin;
  const float *pts = (const float *)s.points;
  double *sums = (double *)b.sums + s.row_begin * p.cols;
  const int C = p.cols;
  const unsigned minp = (unsigned)p.min_points;
  rc_i64 ntiles = (s.n + RCP_TILE - 1) / RCP_TILE;
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  for (rc_i64 t = blockIdx.x; t < ntiles; t += gridDim.x) {
    int c = 0;
    int sl[RCP_ITEMS], fv[RCP_ITEMS];
    unsigned cn[RCP_ITEMS];
    // Every row's slot, then every entry: the loads of a tile in flight together.
#pragma unroll
    for (int k = 0; k < RCP_ITEMS; k++) {
      rc_i64 r = t * RCP_TILE + k * RCP_THREADS + threadIdx.x;
      sl[k] = r < s.n ? pslot[r] : -1;
    }
#pragma unroll
    for (int k = 0; k < RCP_ITEMS; k++) {
      uint2 cf = make_uint2(0u, 0u);
      if (sl[k] >= 0) cf = *(const uint2 *)&T[sl[k]].cnt;
      cn[k] = cf.x;
      fv[k] = (sl[k] >= 0 && cf.x >= minp) ? (int)cf.y : -1;  // first row of my kept voxel
    }
#pragma unroll
    for (int k = 0; k < RCP_ITEMS; k++) {
      rc_i64 r = t * RCP_TILE + k * RCP_THREADS + threadIdx.x;
      bool fl = fv[k] >= 0 && fv[k] == (int)r;
      unsigned word = __ballot_sync(0xffffffffu, fl);
      if (lane == 0) flags[(t * RCP_TILE + k * RCP_THREADS) / 32 + w] = word;
      c += __popc(word);
      if (fl) pslot[r] = (int)cn[k];
      const int v = fv[k];
      int vp = __shfl_up_sync(0xffffffffu, v, 1), vn = __shfl_down_sync(0xffffffffu, v, 1);
      int head, tail;
      rcp_run(lane == 0 || vp != v, lane == 31 || vn != v, lane, &head, &tail);
      const bool single = __all_sync(0xffffffffu, head == tail);
      const float *row = pts + r * C;
      double *dst = sums + (rc_i64)v * C;
      for (int j = 0; j < C; j++) {
        double x = v >= 0 ? (double)row[j] : 0.0;
        if (!single) {
#pragma unroll
          for (int o = 1; o < 32; o <<= 1) {
            double y = __shfl_down_sync(0xffffffffu, x, o);
            if (lane + o <= tail) x += y;
          }
        }
        if (v >= 0 && lane == head) atomicAdd(dst + j, x);
      }
    }
    if (lane == 0) sh[w] = c;
    __syncthreads();
    if (threadIdx.x == 0) {
      int total = 0;
      for (int k = 0; k < RCP_THREADS / 32; k++) total += sh[k];
      ((int *)b.blk_cnt)[rcp_tile0(s) + t] = total;
    }
    __syncthreads();
  }
}

// One block per sample: exclusive scan of its tiles' counts; voxel totals.
extern "C" __global__ void __launch_bounds__(1024) points_scan(RcPointsBufs b, RcPointsParams p) {
  const int i = blockIdx.x;
  const RcPointsSample &s = ((const RcPointsSample *)b.samples)[i];
  rc_i64 ntiles = (s.n + RCP_TILE - 1) / RCP_TILE, t0 = s.row_begin / RCP_TILE;
  int run = 0;
  for (rc_i64 c0 = 0; c0 < ntiles; c0 += blockDim.x) {
    rc_i64 t = c0 + threadIdx.x;
    int x = t < ntiles ? ((const int *)b.blk_cnt)[t0 + t] : 0;
    int total;
    int e = rcp_scan(x, &total);
    if (t < ntiles) ((int *)b.blk_off)[t0 + t] = run + e;
    run += total;
  }
  if (threadIdx.x == 0) {
    RcPointsInfo &f = rcp_info(b, i);
    f.total = f.err ? 0 : run;
    f.count = (p.max_voxels > 0 && f.total > p.max_voxels) ? p.max_voxels : f.total;
  }
}

// Per tile: voxel id = rank of its first row among first rows (first-appearance order, the CPU
// backend's order); per voxel its count (from the first row's pslot), first row and coordinates.
// Reads and writes follow the rows: no random access.
extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_assign(RcPointsBufs b, RcPointsParams p) {
  __shared__ int off[RCP_ITEMS][RCP_THREADS / 32];
  const RcPointsSample &s = rcp_sample(b);
  const RcPointsInfo &fi = rcp_info(b, blockIdx.y);
  const unsigned *flags = (const unsigned *)b.flags + s.row_begin / 32;
  const int *pslot = (const int *)b.pslot + s.row_begin;
  const bool coords = p.o_coord >= 0;
  rc_i64 ntiles = (s.n + RCP_TILE - 1) / RCP_TILE;
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  for (rc_i64 t = blockIdx.x; t < ntiles; t += gridDim.x) {
    unsigned words[RCP_ITEMS];
#pragma unroll
    for (int k = 0; k < RCP_ITEMS; k++) words[k] = flags[(t * RCP_TILE + k * RCP_THREADS) / 32 + w];
    if (lane < RCP_ITEMS) {
      unsigned mine = 0u;
#pragma unroll
      for (int k = 0; k < RCP_ITEMS; k++)
        if (k == lane) mine = words[k];
      off[lane][w] = __popc(mine);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int run = ((const int *)b.blk_off)[rcp_tile0(s) + t];
      for (int k = 0; k < RCP_ITEMS; k++)
        for (int v = 0; v < RCP_THREADS / 32; v++) {
          int c = off[k][v];
          off[k][v] = run;
          run += c;
        }
    }
    __syncthreads();
    const float *pts = (const float *)s.points;
#pragma unroll
    for (int k = 0; k < RCP_ITEMS; k++) {
      if (!((words[k] >> lane) & 1u)) continue;
      rc_i64 r = t * RCP_TILE + k * RCP_THREADS + threadIdx.x;
      int vid = off[k][w] + __popc(words[k] & ((1u << lane) - 1u));
      rc_i64 idx = s.row_begin + vid;
      ((int *)b.vcount)[idx] = pslot[r];
      ((int *)b.vfirst)[idx] = (int)r;
      if (coords) {
        rc_i64 q[3];
        rcp_coord(s, fi, p, pts + r * p.cols, q);
        int *vc = (int *)b.vcoord + idx * 3;
        for (int a = 0; a < 3; a++) vc[a] = (int)q[a];
      }
    }
    __syncthreads();
  }
}

// max_voxels: one block per sample (blockIdx.x). The max_voxels-th largest count t by an 8-bit
// radix select over the counts; voxels with more points are kept, and of those with exactly t the
// earliest ones; new ids keep the voxel order.
extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_select(RcPointsBufs b, RcPointsParams p) {
  __shared__ unsigned hist[256];
  __shared__ unsigned sh_prefix;
  __shared__ int sh_k;
  const RcPointsSample &s = ((const RcPointsSample *)b.samples)[blockIdx.x];
  RcPointsInfo &f = rcp_info(b, blockIdx.x);
  const int M = f.total;
  const int *vc = (const int *)b.vcount + s.row_begin;
  int *nid = (int *)b.newid + s.row_begin;
  if (M <= p.max_voxels) return;  // uniform: every voxel kept, ids unchanged (finalize checks)
  unsigned prefix = 0u, mask = 0u;
  if (threadIdx.x == 0) sh_k = p.max_voxels;
  for (int pass = 0; pass < 4; pass++) {
    int shift = 24 - 8 * pass;
    for (int d = threadIdx.x; d < 256; d += blockDim.x) hist[d] = 0u;
    __syncthreads();
    for (int i = threadIdx.x; i < M; i += blockDim.x) {
      unsigned c = (unsigned)vc[i];
      if ((c & mask) == prefix) atomicAdd(&hist[(c >> shift) & 255u], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int k = sh_k;
      for (int d = 255; d >= 0; d--) {
        if ((unsigned)k <= hist[d]) {
          sh_prefix = prefix | ((unsigned)d << shift);
          break;
        }
        k -= (int)hist[d];
      }
      sh_k = k;
    }
    __syncthreads();
    prefix = sh_prefix;
    mask |= 255u << shift;
  }
  const unsigned t = prefix;
  const int k = sh_k;  // ties (count == t) to keep, the earliest first
  int run = 0, ties = 0;
  for (int c0 = 0; c0 < M; c0 += blockDim.x) {
    int i = c0 + threadIdx.x;
    unsigned c = i < M ? (unsigned)vc[i] : 0u;
    int tie = (i < M && c == t) ? 1 : 0;
    int tie_total;
    int te = rcp_scan(tie, &tie_total);
    int keep = (i < M && (c > t || (tie && ties + te < k))) ? 1 : 0;
    int keep_total;
    int ke = rcp_scan(keep, &keep_total);
    if (i < M) nid[i] = keep ? run + ke : -1;
    run += keep_total;
    ties += tie_total;
  }
}

// Thread j of a sample: voxel j -> its output row; rows past the kept voxels up to max_points are
// zeroed; the first thread writes num_points (-1 after a device-side error).
extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_finalize(RcPointsBufs b, RcPointsParams p) {
  const RcPointsSample &s = rcp_sample(b);
  const RcPointsInfo &f = rcp_info(b, blockIdx.y);
  const rc_u64 *outs = (const rc_u64 *)b.outs + (rc_i64)blockIdx.y * 4;
  float *feat = (float *)outs[p.o_feat];
  int *cnt = p.o_cnt >= 0 ? (int *)outs[p.o_cnt] : 0;
  int *crd = p.o_coord >= 0 ? (int *)outs[p.o_coord] : 0;
  const rc_i64 cap = p.max_points > 0 ? (rc_i64)p.max_points : (rc_i64)f.count;
  const rc_i64 kept = (rc_i64)f.count < cap ? (rc_i64)f.count : cap;
  const bool sel = p.max_voxels > 0 && f.total > p.max_voxels;
  const rc_i64 ext = s.n > cap ? s.n : cap;
  const int C = p.cols;
  for (rc_i64 j = (rc_i64)blockIdx.x * blockDim.x + threadIdx.x; j < ext; j += (rc_i64)gridDim.x * blockDim.x) {
    if (j == 0 && p.o_num >= 0) *(int *)outs[p.o_num] = f.err ? -1 : (int)kept;
    if (j < f.total) {
      rc_i64 idx = s.row_begin + j;
      rc_i64 o = sel ? (rc_i64)((const int *)b.newid)[idx] : j;
      if (o >= 0 && o < cap) {
        int n = ((const int *)b.vcount)[idx];
        const double *sm = (const double *)b.sums + (s.row_begin + ((const int *)b.vfirst)[idx]) * C;
        for (int c = 0; c < C; c++) feat[o * C + c] = (float)(sm[c] / (double)n);
        if (cnt) cnt[o] = n;
        if (crd)
          for (int a = 0; a < 3; a++) crd[o * 3 + a] = ((const int *)b.vcoord)[idx * 3 + a];
      }
    }
    if (p.max_points > 0 && j >= kept && j < cap) {
      for (int c = 0; c < C; c++) feat[j * C + c] = 0.f;
      if (cnt) cnt[j] = 0;
      if (crd)
        for (int a = 0; a < 3; a++) crd[j * 3 + a] = 0;
    }
  }
}

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
    if (!rcp_coord(s, f, p, row, q)) continue;
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
