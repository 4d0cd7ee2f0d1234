// points_sort.cu: the sort half of kernels/points.cu (the registry compiles the two as one source,
// points.cu first): radix passes, voxel runs, max_voxels selection, means.
#line 4 "points_sort.cu"
// Passes a sample's sort took, as far as where it left the keys goes: a local sample's (pass 0,
// then points_local) as 2.
__device__ __forceinline__ int rcp_np(const RcPointsInfo &f) { return f.local ? 2 : f.npass; }

// Sorted keys of a sample: where the last pass left them.
struct RcpSorted {
  const rc_u64 *k;
  const unsigned *r;
  int wide;
  __device__ __forceinline__ rc_u64 key(rc_i64 i) const { return wide ? k[i] : k[i] >> RCP_ROW_BITS; }
  __device__ __forceinline__ unsigned row(rc_i64 i) const { return wide ? r[i] : (unsigned)(k[i] & RCP_ROW_MASK); }
};
__device__ __forceinline__ RcpSorted rcp_sorted(const RcPointsBufs &b, const RcPointsSample &s, const RcPointsInfo &f) {
  const int o = (rcp_np(f) - 1) & 1;
  RcpSorted x;
  x.k = (const rc_u64 *)(o ? b.keys1 : b.keys0) + s.row_begin;
  x.r = (const unsigned *)(o ? b.rows1 : b.rows0) + s.row_begin;
  x.wide = f.wide;
  return x;
}

// One tile of one stable LSD radix pass (digit `pass`) over a sample's segment: the block's 256
// threads rank its RCP_TILE items and store them. Items are warp-striped (warp w holds tile rows
// [w * 256, w * 256 + 256), lane l row k * 32 + l of them), so ranking items per warp in (k, lane)
// order is tile order: stable. Pass p reads keys[(pass - 1) & 1] (pass 0: points_hist's items, a
// dropped row RCP_NONE) and writes keys[pass & 1]. `look` (thread d, digit d): look ? the decoupled
// look-back over the earlier tiles (status words `st`, this tile's published at once) : a running
// count per digit in `runsum` (one block doing all tiles in order).
// msd (pass 0 of a local sample): the digit is the key's top 8 bits (the last pass's histogram).
template <int LOOKW>
__device__ void rcp_pass_tile(const RcPointsBufs &b, const RcPointsSample &s, const RcPointsInfo &f,
                              const RcPointsParams &p, int pass, rc_i64 t, bool look, unsigned *runsum,
                              bool msd = false) {
  __shared__ unsigned wh[RCP_WARPS][256];
  __shared__ unsigned gb[256];
  __shared__ rc_u64 sk[RCP_TILE];
  __shared__ unsigned sr[RCP_TILE];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const rc_i64 n_in = pass == 0 ? s.n : (rc_i64)f.nsort;
  for (int d = lane; d < 256; d += 32) wh[w][d] = 0u;
  __syncthreads();
  const rc_i64 tile = s.row_begin / RCP_TILE + t;
  const bool wide = f.wide != 0;
  const int hslot = msd ? f.npass - 1 : pass;
  const int dshift = rcp_dshift(hslot, f.npass, f.kbits) + (wide ? 0 : RCP_ROW_BITS);
  volatile unsigned *sv = (volatile unsigned *)((pass & 1) ? b.stat1 : b.stat0);
  rc_u64 key[RCP_ITEMS];
  unsigned row[RCP_ITEMS], dig[RCP_ITEMS], off[RCP_ITEMS];
  const rc_i64 r0 = t * RCP_TILE + w * (32 * RCP_ITEMS) + lane;
  {
    const rc_u64 *kin = (const rc_u64 *)((pass & 1) ? b.keys0 : b.keys1) + s.row_begin;
    const unsigned *rin = (const unsigned *)((pass & 1) ? b.rows0 : b.rows1) + s.row_begin;
#pragma unroll
    for (int k = 0; k < RCP_ITEMS; k++) {
      rc_i64 r = r0 + k * 32;
      key[k] = r < n_in ? kin[r] : RCP_NONE;
      const bool ok = key[k] != RCP_NONE;
      row[k] = (ok && wide) ? rin[r] : 0u;
      dig[k] = ok ? (unsigned)(key[k] >> dshift) & 255u : 256u;
    }
  }
  // Warp-level multi-split: rank among the warp's earlier items of the same digit (peers by ballots).
  const unsigned lt = (1u << lane) - 1u;
#pragma unroll
  for (int k = 0; k < RCP_ITEMS; k++) {
    const unsigned d = dig[k];
    const unsigned peers = rcp_match9(d);
    unsigned base = d < 256u ? wh[w][d] : 0u;
    __syncwarp();
    if (d < 256u && lane == __ffs(peers) - 1) wh[w][d] = base + __popc(peers);
    __syncwarp();
    off[k] = base + __popc(peers & lt);
  }
  __syncthreads();
  // Thread d: digit d's count in the tile and per-warp offsets; publish the count at once (so that
  // later tiles can go on), then the tile's exchange, then the look-back, which has had time.
  const int d = threadIdx.x;
  unsigned run = 0u;
#pragma unroll
  for (int v = 0; v < RCP_WARPS; v++) {
    unsigned c = wh[v][d];
    wh[v][d] = run;
    run += c;
  }
  if (look) sv[tile * 256 + d] = (t == 0 ? RCP_ST_PRE : RCP_ST_AGG) | run;
  // One scan for two: the tile's digit counts (low half) and the sample's (high half, < 2^30).
  const rc_u64 both = ((rc_u64)((const unsigned *)b.hist)[(rc_i64)blockIdx.y * RCP_PASSES * 256 + hslot * 256 + d] << 32) | run;
  rc_u64 tot;
  const rc_u64 ex = rcp_scan64(both, &tot);
  const int nt = (int)(unsigned)tot, tdo = (int)(unsigned)ex;  // tdo: digit d's first slot in the tile
  const unsigned dbase = (unsigned)(ex >> 32);
  gb[d] = (unsigned)tdo;
  __syncthreads();
  // Items into the tile's digit order in shared memory (stable: warp, then the warp's own order).
#pragma unroll
  for (int k = 0; k < RCP_ITEMS; k++) {
    const unsigned dk = dig[k];
    if (dk >= 256u) continue;
    const unsigned loc = gb[dk] + wh[w][dk] + off[k];
    sk[loc] = key[k];
    if (wide) sr[loc] = row[k];
  }
  unsigned excl = 0u;
  if (!look) {
    excl = runsum[d];
    runsum[d] = excl + run;
  } else if (t > 0 && LOOKW > 1) {
    // LOOKW earlier tiles' words per step, loads in flight together; the walk never passes the
    // sample's first tile (always a prefix), so the words below it are never used.
    const rc_i64 tile0 = s.row_begin / RCP_TILE;
    for (rc_i64 j = tile - 1;;) {
      unsigned v[LOOKW];
#pragma unroll
      for (int i = 0; i < LOOKW; i++) v[i] = j - i >= tile0 ? sv[(j - i) * 256 + d] : RCP_ST_PRE;
      int used = 0;
      bool done = false;
#pragma unroll
      for (int i = 0; i < LOOKW; i++) {
        if (done || v[i] == 0u) break;  // a prefix reached, or not published yet (read again from there)
        excl += v[i] & RCP_ST_VAL;
        used++;
        done = (v[i] & RCP_ST_PRE) != 0u;
      }
      if (done) break;
      j -= used;
    }
    if (!(p.flags & RCP_F_AGGONLY)) sv[tile * 256 + d] = RCP_ST_PRE | (excl + run);
  } else if (t > 0) {
    for (rc_i64 j = tile - 1;;) {
      unsigned v = sv[j * 256 + d];
      if (v == 0u) {  // not published yet: that block is running, wait
        if (p.flags & RCP_F_SLEEP) __nanosleep(64);
        continue;
      }
      excl += v & RCP_ST_VAL;
      if (v & RCP_ST_PRE) break;
      j--;
    }
    if (!(p.flags & RCP_F_AGGONLY)) sv[tile * 256 + d] = RCP_ST_PRE | (excl + run);
  }
  __syncthreads();  // every thread has read gb[] as tile offsets
  gb[d] = dbase + excl - (unsigned)tdo;  // + slot in the tile = the row in the segment
  __syncthreads();
  // Consecutive slots of one digit go to consecutive rows: coalesced stores.
  rc_u64 *kout = (rc_u64 *)((pass & 1) ? b.keys1 : b.keys0) + s.row_begin;
  unsigned *rout = (unsigned *)((pass & 1) ? b.rows1 : b.rows0) + s.row_begin;
  for (int i = threadIdx.x; i < nt; i += RCP_THREADS) {
    const rc_u64 kk = sk[i];
    const unsigned dst = gb[(unsigned)(kk >> dshift) & 255u] + (unsigned)i;
    kout[dst] = kk;
    if (wide) rout[dst] = sr[i];
  }
  __syncthreads();  // shared memory free for the next tile
}

// rcp_local's tests before the histogram's, negated (uniform: the sample's info and the parameters
// only), and sample si's counts of the last pass's digit (the key's top 8 bits: its MSD buckets).
// Macros, not functions: as functions they changed the register allocation of the pass kernels.
#define RCP_NOT_LOCAL_KEYS(s, f, p) \
  (!((p).flags & RCP_F_LOCAL) || (f).wide || (f).err || (f).kbits <= 8 || (f).kbits > RCP_LMAXBITS || (s).n < (rc_i64)(p).local_min)
#define RCP_TOP_HIST(b, si, f) ((const unsigned *)(b).hist + (rc_i64)(si) * RCP_PASSES * 256 + ((f).npass - 1) * 256)
// RCP_F_LOCAL: whether sample s is sorted as pass 0 by the key's top 8 bits, then each of those
// buckets in shared memory (points_local) in place of the passes after: narrow keys of 9 to
// RCP_LMAXBITS bits, at least p.local_min rows, every top-8-bit bucket (the last pass's histogram)
// at most RCP_LCAP rows. The same answer in every block that asks (pass 0's, points_local's): it
// reads only what points_hist wrote. Every thread of the block calls it (a block vote).
__device__ __forceinline__ bool rcp_local(const RcPointsBufs &b, const RcPointsSample &s, const RcPointsInfo &f,
                                          const RcPointsParams &p) {
  if (RCP_NOT_LOCAL_KEYS(s, f, p)) return false;  // uniform
  const unsigned *h = RCP_TOP_HIST(b, blockIdx.y, f);
  int big = 0;
  for (int d = threadIdx.x; d < 256; d += blockDim.x) big |= h[d] > (unsigned)RCP_LCAP ? 1 : 0;
  return !__syncthreads_or(big);
}

// RCP_F_LOCAL, after pass 0 sorted a local sample by its keys' top 8 bits: bucket x of sample y
// (work item y * 256 + x; a grid of blocks takes them in turn, 2 blocks per SM) is sorted by the
// key bits below (lb = kbits - 8 <= 16) in shared memory: items (low key bits << 14 | place in the
// bucket) in stable LSD passes (one of lb bits, or two of about lb / 2: one ballot per digit bit),
// ranked as a radix pass ranks them (warp-striped, multi-split per warp, then per (digit, warp)
// offsets; a warp's rounds past the bucket's end skipped); then each sorted place's item goes to keys1
// (where two passes leave the sorted keys, rcp_np). Bucket 0 also zeroes the status words
// points_runs looks back through (stat0: pass 0's own) and marks the sample local.
// RCP_LTHREADS threads (NT) of RCP_LITEMS items each (NI).
extern "C" __global__ void __launch_bounds__(RCP_LTHREADS, 2) points_local(RcPointsBufs b, RcPointsParams p) {
  constexpr int NT = RCP_LTHREADS, NI = RCP_LITEMS;
  __shared__ unsigned sk[NT * NI];
  __shared__ unsigned short wh[NT / 32][256];
  const int t = threadIdx.x, lane = t & 31, w = t >> 5;
  for (rc_i64 j = blockIdx.x; j < (rc_i64)p.num_samples * 256; j += gridDim.x) {
    const int y = (int)(j >> 8), x = (int)(j & 255);
    const RcPointsSample &s = ((const RcPointsSample *)b.samples)[y];
    RcPointsInfo &f = rcp_info(b, y);
    if (RCP_NOT_LOCAL_KEYS(s, f, p)) continue;  // not local (uniform)
    const unsigned *hc = RCP_TOP_HIST(b, y, f);
    const int nb = (int)hc[x];
    if (nb == 0 && x != 0) continue;  // nothing to sort, nothing to zero (uniform)
    // The bucket's start and rcp_local's bucket test (as a count: two block scans, not its vote).
    int start, big;
    const int c = t < 256 ? (int)hc[t] : 0;
    rcp_scan(t < x ? c : 0, &start);
    rcp_scan(c > RCP_LCAP ? 1 : 0, &big);
    if (big) continue;  // uniform
    if (x == 0) {
      const rc_i64 tile0 = s.row_begin / RCP_TILE, nt = ((rc_i64)f.nsort + RCP_TILE - 1) / RCP_TILE;
      for (rc_i64 i = t; i < nt; i += NT) ((unsigned *)b.stat0)[(tile0 + i) * 256] = 0u;
      if (t == 0) f.local = 1;  // read from the next launch on (this one's blocks do not read it)
    }
    if (nb == 0) continue;  // uniform
    const int lb = f.kbits - 8;
    const rc_u64 *kin = (const rc_u64 *)b.keys0 + s.row_begin + start;
    // Loads 4 at a time in flight (the compiler cannot know that keys0 and keys1 do not overlap).
    for (int i0 = t; i0 < nb; i0 += 4 * NT) {
      rc_u64 v[4];
#pragma unroll
      for (int u = 0; u < 4; u++) v[u] = i0 + u * NT < nb ? kin[i0 + u * NT] : 0ull;
#pragma unroll
      for (int u = 0; u < 4; u++)
        if (i0 + u * NT < nb) sk[i0 + u * NT] = ((unsigned)(v[u] >> RCP_ROW_BITS) & ((1u << lb) - 1u)) << 14 | (unsigned)(i0 + u * NT);
    }
    __syncthreads();
    // Warp w's places start at w * 32 * NI: its rounds past the bucket's end have nothing to rank.
    const int wk = nb - w * 32 * NI <= 0 ? 0 : (nb - w * 32 * NI + 31) / 32;
    const unsigned lt = (1u << lane) - 1u;
    // One pass of lb bits (lb <= 8) or two of about lb / 2 (fewer ballots than 8-bit digits).
    const int wa = lb <= 8 ? lb : (lb + 1) / 2;
    for (int sh = 0; sh < lb; sh += wa) {
      // An item past the bucket is all ones (valid items are < 2^30): the largest digit, ranked
      // after every real item (its place is past them), so it moves none of them.
      const int nbits = lb - sh < wa ? lb - sh : wa;
      const unsigned mask = (1u << nbits) - 1u;
      unsigned key[NI], off[NI];
      const auto dig = [sh, mask](unsigned v) { return (v >> (14 + sh)) & mask; };
      for (int d = lane; d < 256; d += 32) wh[w][d] = 0;
      __syncwarp();
#pragma unroll
      for (int k = 0; k < NI; k++) {  // warp-striped: warp w holds places [w * 32 * ITEMS, ...)
        const int pos = w * (32 * NI) + k * 32 + lane;
        key[k] = pos < nb ? sk[pos] : 0xffffffffu;
      }
#pragma unroll
      for (int k = 0; k < NI; k++) {
        if (k >= wk) break;  // uniform in the warp
        const unsigned d = dig(key[k]);
        const unsigned peers = rcp_match_bits<8>(d, nbits);
        const unsigned base = wh[w][d];
        __syncwarp();
        if (lane == __ffs(peers) - 1) wh[w][d] = (unsigned short)(base + __popc(peers));
        __syncwarp();
        off[k] = base + __popc(peers & lt);
      }
      __syncthreads();  // every warp's counts are in, every item read
      // Thread d < 256: digit d's place before each warp's, then (block scan) before the digit.
      unsigned run = 0u;
      if (t < 256) {
#pragma unroll
        for (int v = 0; v < NT / 32; v++) {
          const unsigned cw = wh[v][t];
          wh[v][t] = (unsigned short)run;
          run += cw;
        }
      }
      int tot;
      const int ex = rcp_scan((int)run, &tot);
      if (t < 256)
#pragma unroll
        for (int v = 0; v < NT / 32; v++) wh[v][t] = (unsigned short)(wh[v][t] + ex);
      __syncthreads();
#pragma unroll
      for (int k = 0; k < NI; k++)
        if (key[k] != 0xffffffffu) sk[wh[w][dig(key[k])] + off[k]] = key[k];
      __syncthreads();
    }
    rc_u64 *kout = (rc_u64 *)b.keys1 + s.row_begin + start;
    for (int i0 = t; i0 < nb; i0 += 4 * NT) {
      rc_u64 v[4];
#pragma unroll
      for (int u = 0; u < 4; u++) v[u] = i0 + u * NT < nb ? kin[sk[i0 + u * NT] & 0x3fffu] : 0ull;
#pragma unroll
      for (int u = 0; u < 4; u++)
        if (i0 + u * NT < nb) kout[i0 + u * NT] = v[u];
    }
    __syncthreads();  // shared memory free for the next bucket
  }
}

// Radix pass p.pass of every sample that needs it, a tile per block. A block takes the next tile
// ticket of its sample (tickets follow the order blocks start in, so the tile before it is held by
// a block already running: the look-back cannot wait on a block that never runs). A sample that
// needs more passes than the host launched (p.last_pass: keys over 40 bits for voxel_downsample, or
// more than the instance's earlier batches needed) gets them all in this launch from its block 0
// alone, tile after tile (slow, rare). LOOKW > 1: the look-back reads LOOKW tiles' words per step
// (points_passw 16, points_passw4, points_passw2).
template <int LOOKW>
__device__ __forceinline__ void rcp_pass(const RcPointsBufs &b, const RcPointsParams &p) {
  __shared__ unsigned runsum[256];
  __shared__ int sh_t;
  const RcPointsSample &s = rcp_sample(b);
  const RcPointsInfo &f = rcp_info(b, blockIdx.y);
  const int pass = p.pass;
  if (pass >= f.npass || (pass > 0 && f.local)) return;  // a local sample's later passes: points_local
  const rc_i64 tile0 = s.row_begin / RCP_TILE;
  // A local sample whose pass 0 is the last launch (the host launched one pass: PassHint) is not
  // behind: points_local follows (rcp_local is a block vote, reached by the whole block).
  if (pass == p.last_pass && f.npass > pass + 1 && !(pass == 0 && rcp_local(b, s, f, p))) {
    if (blockIdx.x != 0) return;
    for (int q = pass; q < f.npass; q++) {
      runsum[threadIdx.x] = 0u;  // read and written by thread d only
      const rc_i64 n_in = q == 0 ? s.n : (rc_i64)f.nsort;
      for (rc_i64 t = 0; t * RCP_TILE < n_in; t++) rcp_pass_tile<LOOKW>(b, s, f, p, q, t, false, runsum);
    }
    // points_runs looks back through the status array pass npass would use: zero it.
    unsigned *st_next = (unsigned *)((f.npass & 1) ? b.stat1 : b.stat0);
    for (rc_i64 t = 0; t * RCP_TILE < (rc_i64)f.nsort; t++) st_next[(tile0 + t) * 256 + threadIdx.x] = 0u;
    return;
  }
  const rc_i64 n_in = pass == 0 ? s.n : (rc_i64)f.nsort;
  if ((rc_i64)blockIdx.x * RCP_TILE >= n_in) return;  // no ticket needed: the tiles taken are [0, gx')
  const bool msd = pass == 0 && rcp_local(b, s, f, p);
  if (threadIdx.x == 0) sh_t = (int)atomicAdd((unsigned *)b.ctr + blockIdx.y * RCP_CTRS + pass, 1u);
  __syncthreads();
  const rc_i64 t = sh_t;
  // Zero this tile's status words for pass + 1 (pass - 1, their last user, has finished).
  ((unsigned *)((pass & 1) ? b.stat0 : b.stat1))[(tile0 + t) * 256 + threadIdx.x] = 0u;
  rcp_pass_tile<LOOKW>(b, s, f, p, pass, t, true, runsum, msd);
}
extern "C" __global__ void __launch_bounds__(RCP_THREADS, 4) points_pass(RcPointsBufs b, RcPointsParams p) { rcp_pass<1>(b, p); }
extern "C" __global__ void __launch_bounds__(RCP_THREADS, 4) points_passw(RcPointsBufs b, RcPointsParams p) { rcp_pass<16>(b, p); }
extern "C" __global__ void __launch_bounds__(RCP_THREADS, 4) points_passw4(RcPointsBufs b, RcPointsParams p) { rcp_pass<4>(b, p); }
extern "C" __global__ void __launch_bounds__(RCP_THREADS, 4) points_passw2(RcPointsBufs b, RcPointsParams p) { rcp_pass<2>(b, p); }

// Rows of the voxel that starts at sorted row i: the first j > i with another key (gallop, then
// bisect: O(log count) loads).
__device__ __forceinline__ rc_i64 rcp_run_len(const RcpSorted &so, rc_i64 i, rc_u64 key, rc_i64 ns) {
  rc_i64 lo = i, hi = ns, step = 1;  // key(lo) == key; hi: the end or another key
  while (lo + step < ns) {
    if (so.key(lo + step) != key) {
      hi = lo + step;
      break;
    }
    lo += step;
    step <<= 1;
  }
  while (hi - lo > 1) {
    rc_i64 m = lo + (hi - lo) / 2;
    if (so.key(m) == key) lo = m;
    else hi = m;
  }
  return hi - i;
}

// Voxels from the sorted keys, one tile of sorted rows per block (a ticket, as in points_pass). Row
// i starts a kept voxel when its key differs from row i - 1's and row i + min_points - 1 has its
// key (the segment is sorted). Voxel id = number of kept starts before it in the sample: the
// tile's own (scan over (round, warp, lane), the tile's row order) plus the earlier tiles' (decoupled
// look-back on one status word per tile, in the status array the last pass left zeroed). Per voxel:
// first sorted row, count (RCP_F_DIST: none, finalize takes the distance to the next start) and
// coordinates. The sample's last tile writes the totals. RCP_F_LOOKW: warp 0 scans and looks back
// (32 tiles per step); else thread 0 alone.
// Row of thread t in round k of tile T: T * RCP_TILE + k * RCP_THREADS + t.
__device__ __forceinline__ void rcp_runs(const RcPointsBufs &b, const RcPointsParams &p) {
  __shared__ int off[RCP_ITEMS][RCP_WARPS];
  __shared__ int sh_t, sh_base;
  const RcPointsSample &s = rcp_sample(b);
  RcPointsInfo &f = rcp_info(b, blockIdx.y);
  const rc_i64 ns = f.nsort, m1 = (rc_i64)p.min_points - 1;
  const rc_i64 ntiles = (ns + RCP_TILE - 1) / RCP_TILE;
  if ((rc_i64)blockIdx.x >= ntiles) return;
  if (threadIdx.x == 0) sh_t = (int)atomicAdd((unsigned *)b.ctr + blockIdx.y * RCP_CTRS + RCP_PASSES, 1u);
  __syncthreads();
  const rc_i64 t = sh_t;
  const RcpSorted so = rcp_sorted(b, s, f);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  unsigned words[RCP_ITEMS];
  rc_u64 keys[RCP_ITEMS];
#pragma unroll
  for (int k = 0; k < RCP_ITEMS; k++) {
    rc_i64 i = t * RCP_TILE + k * RCP_THREADS + threadIdx.x;
    bool fl = false;
    keys[k] = 0ull;
    if (i < ns) {
      keys[k] = so.key(i);
      fl = (i == 0 || so.key(i - 1) != keys[k]) && (m1 == 0 || (i + m1 < ns && so.key(i + m1) == keys[k]));
    }
    words[k] = __ballot_sync(0xffffffffu, fl);
  }
  if (lane < RCP_ITEMS) {
    unsigned mine = 0u;
#pragma unroll
    for (int k = 0; k < RCP_ITEMS; k++)
      if (k == lane) mine = words[k];
    off[lane][w] = __popc(mine);
  }
  __syncthreads();
  // Look-back: the status array pass npass would use (zeroed by pass npass - 1), word 0 per tile.
  volatile unsigned *sv = (volatile unsigned *)((rcp_np(f) & 1) ? b.stat1 : b.stat0);
  const rc_i64 tile = s.row_begin / RCP_TILE + t;
  if ((p.flags & RCP_F_LOOKW) && w == 0) {
    // Lane l holds entries 2l, 2l + 1 of off in (round, warp) order: a warp scan.
    int *o = &off[0][0];
    const int e0 = o[2 * lane], e1 = o[2 * lane + 1];
    int inc = e0 + e1;
#pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, inc, d);
      if (lane >= d) inc += y;
    }
    const unsigned run = (unsigned)__shfl_sync(0xffffffffu, inc, 31);
    o[2 * lane] = inc - e0 - e1;
    o[2 * lane + 1] = inc - e1;
    unsigned excl = 0u;
    if (lane == 0) sv[tile * 256] = (t == 0 ? RCP_ST_PRE : RCP_ST_AGG) | run;
    if (t > 0) {
      // Lane l reads tile j - l; below the sample's first tile (a prefix, never passed) nothing.
      const rc_i64 tile0 = s.row_begin / RCP_TILE;
      for (rc_i64 j = tile - 1;;) {
        const unsigned v = j - lane >= tile0 ? sv[(j - lane) * 256] : RCP_ST_PRE;
        const unsigned zero = __ballot_sync(0xffffffffu, v == 0u), pre = __ballot_sync(0xffffffffu, (v & RCP_ST_PRE) != 0u);
        const int fz = zero ? __ffs(zero) - 1 : 32, fp = pre ? __ffs(pre) - 1 : 32;
        const int take = fz < fp ? fz : fp + 1;  // lanes [0, take): published, up to the first prefix
        unsigned add = lane < take ? (v & RCP_ST_VAL) : 0u;
#pragma unroll
        for (int d = 16; d > 0; d >>= 1) add += __shfl_xor_sync(0xffffffffu, add, d);
        excl += add;
        if (fp < fz) break;
        j -= fz;
      }
      if (lane == 0 && !(p.flags & RCP_F_AGGONLY)) sv[tile * 256] = RCP_ST_PRE | (excl + run);
    }
    if (lane == 0) {
      sh_base = (int)excl;
      if (t == ntiles - 1) {
        const int total = (int)(excl + run);
        f.total = total;
        f.count = (p.max_voxels > 0 && total > p.max_voxels) ? p.max_voxels : total;
      }
    }
  } else if (!(p.flags & RCP_F_LOOKW) && threadIdx.x == 0) {
    int run = 0;
    for (int k = 0; k < RCP_ITEMS; k++)
      for (int v = 0; v < RCP_WARPS; v++) {
        int c = off[k][v];
        off[k][v] = run;
        run += c;
      }
    unsigned excl = 0u;
    if (t == 0) {
      sv[tile * 256] = RCP_ST_PRE | (unsigned)run;
    } else {
      sv[tile * 256] = RCP_ST_AGG | (unsigned)run;
      for (rc_i64 j = tile - 1;;) {
        unsigned v = sv[j * 256];
        if (v == 0u) continue;
        excl += v & RCP_ST_VAL;
        if (v & RCP_ST_PRE) break;
        j--;
      }
      if (!(p.flags & RCP_F_AGGONLY)) sv[tile * 256] = RCP_ST_PRE | (excl + (unsigned)run);
    }
    sh_base = (int)excl;
    if (t == ntiles - 1) {
      const int total = (int)excl + run;
      f.total = total;
      f.count = (p.max_voxels > 0 && total > p.max_voxels) ? p.max_voxels : total;
    }
  }
  __syncthreads();
  const bool coords = p.o_coord >= 0, dist = (p.flags & RCP_F_DIST) != 0u;
  const int base = sh_base;
#pragma unroll
  for (int k = 0; k < RCP_ITEMS; k++) {
    if (!((words[k] >> lane) & 1u)) continue;
    rc_i64 i = t * RCP_TILE + k * RCP_THREADS + threadIdx.x;
    int vid = base + off[k][w] + __popc(words[k] & ((1u << lane) - 1u));
    rc_i64 idx = s.row_begin + vid;
    const rc_u64 key = keys[k];
    ((int *)b.vstart)[idx] = (int)i;
    if (!dist) ((int *)b.vcount)[idx] = (int)rcp_run_len(so, i, key, ns);
    if (coords) {
      int *vc = (int *)b.vcoord + idx * 3;
      vc[0] = (int)((key >> f.shift[0]) + f.cmin[0]);
      vc[1] = (int)(((key >> f.shift[1]) & ((1ull << (f.shift[0] - f.shift[1])) - 1ull)) + f.cmin[1]);
      vc[2] = (int)((key & ((1ull << f.shift[1]) - 1ull)) + f.cmin[2]);
    }
  }
}
extern "C" __global__ void __launch_bounds__(RCP_THREADS) points_runs(RcPointsBufs b, RcPointsParams p) { rcp_runs(b, p); }
// The same at <= 48 registers (5 blocks per SM).
extern "C" __global__ void __launch_bounds__(RCP_THREADS, 5) points_runs48(RcPointsBufs b, RcPointsParams p) { rcp_runs(b, p); }

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

// Output row of voxel j of a sample (-1: dropped by max_voxels or beyond max_points).
__device__ __forceinline__ rc_i64 rcp_out_row(const RcPointsBufs &b, const RcPointsSample &s, const RcPointsInfo &f,
                                              const RcPointsParams &p, rc_i64 j, rc_i64 cap) {
  const bool sel = p.max_voxels > 0 && f.total > p.max_voxels;
  rc_i64 o = sel ? (rc_i64)((const int *)b.newid)[s.row_begin + j] : j;
  return (o >= 0 && o < cap) ? o : -1;
}

__device__ __forceinline__ rc_i64 rcp_cap(const RcPointsParams &p, const RcPointsInfo &f) {
  return p.max_points > 0 ? (rc_i64)p.max_points : (rc_i64)f.count;
}

// Sum of column block [c0, c0 + cw) of the n rows at sorted rows start.. (cw <= 4) into acc, one row
// after another in row order (4 rows' loads in flight). LDG: loads through the read-only path.
template <bool LDG>
__device__ __forceinline__ float rcp_ld(const float *q) {
  if (LDG) return __ldg(q);
  return *q;
}
template <bool LDG>
__device__ __forceinline__ void rcp_sum_rows(const RcpSorted &so, const float *pts, int C, int c0, int cw,
                                             rc_i64 start, int n, double acc[4]) {
  int k = 0;
  for (; k + 4 <= n; k += 4) {
    const float *r4[4];
#pragma unroll
    for (int u = 0; u < 4; u++) r4[u] = pts + (rc_i64)so.row(start + k + u) * C + c0;
    float x4[4][4];
#pragma unroll
    for (int u = 0; u < 4; u++)
#pragma unroll
      for (int c = 0; c < 4; c++) x4[u][c] = c < cw ? rcp_ld<LDG>(r4[u] + c) : 0.f;
#pragma unroll
    for (int u = 0; u < 4; u++)
#pragma unroll
      for (int c = 0; c < 4; c++)
        if (c < cw) acc[c] += (double)x4[u][c];
  }
  for (; k < n; k++) {
    const float *row = pts + (rc_i64)so.row(start + k) * C + c0;
#pragma unroll
    for (int c = 0; c < 4; c++)
      if (c < cw) acc[c] += (double)rcp_ld<LDG>(row + c);
  }
}

// The mean of one long voxel (vn > RCP_LONG sorted rows from vs) by the whole warp into output row
// vo, 4 columns at a time: lane l adds rows l, l + 32, ... in order, then a shuffle-down tree gives
// lane 0 the sum, which it divides by the count and stores.
template <bool LDG, typename S>
__device__ __forceinline__ void rcp_long_mean(const RcpSorted &so, const float *pts, int C, float *feat, rc_i64 vo,
                                              S vs, int vn, int lane) {
  for (int c0 = 0; c0 < C; c0 += 4) {
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    const int cw = C - c0 < 4 ? C - c0 : 4;
    for (int k = lane; k < vn; k += 32) {
      const float *row = pts + (rc_i64)so.row(vs + k) * C + c0;
#pragma unroll
      for (int c = 0; c < 4; c++)
        if (c < cw) acc[c] += (double)rcp_ld<LDG>(row + c);
    }
#pragma unroll
    for (int c = 0; c < 4; c++) {
      if (c >= cw) break;  // uniform in the warp
#pragma unroll
      for (int o2 = 16; o2 > 0; o2 >>= 1) acc[c] += __shfl_down_sync(0xffffffffu, acc[c], o2);
    }
    if (lane == 0)
      for (int c = 0; c < cw; c++) feat[vo * C + c0 + c] = (float)(acc[c] / (double)vn);
  }
}

// Lane j of a warp: voxel j0 + j -> its output row: its count and coordinates, and its mean: a voxel
// of <= RCP_LONG rows by its own lane, its rows one after another in row order; longer ones by the
// whole warp, one after another: lane l adds rows l, l + 32, ... in order, then lane 0 gets
// ((p0 + p16) + (p8 + p24)) + ... (shuffle-down tree, offsets 16, 8, 4, 2, 1). Float64, divided by
// the count, rounded to float32: the CPU backend adds in exactly these orders. Rows past the kept
// voxels up to max_points are zeroed; the first thread writes num_points (-1 after a device-side
// error). RCP_F_DIST: a voxel's count is the distance from its first sorted row to the next voxel's.
// What both finalize forms start from: the sample, its sorted keys, its outputs and points, and the
// rows kept (up to max_points).
#define RCP_FIN_PROLOGUE                                                     \
  const RcPointsSample &s = rcp_sample(b);                                   \
  const RcPointsInfo &f = rcp_info(b, blockIdx.y);                           \
  const RcpSorted so = rcp_sorted(b, s, f);                                  \
  const rc_u64 *outs = (const rc_u64 *)b.outs + (rc_i64)blockIdx.y * 4;      \
  float *feat = (float *)outs[p.o_feat];                                     \
  int *cnt = p.o_cnt >= 0 ? (int *)outs[p.o_cnt] : 0;                        \
  int *crd = p.o_coord >= 0 ? (int *)outs[p.o_coord] : 0;                    \
  const float *pts = (const float *)s.points;                                \
  const rc_i64 cap = rcp_cap(p, f);                                          \
  const rc_i64 kept = (rc_i64)f.count < cap ? (rc_i64)f.count : cap;
template <bool LDG>
__device__ __forceinline__ void rcp_finalize(const RcPointsBufs &b, const RcPointsParams &p) {
  RCP_FIN_PROLOGUE
  const rc_i64 ext = (rc_i64)f.total > cap ? (rc_i64)f.total : cap;
  const int C = p.cols, lane = threadIdx.x & 31;
  const bool dist = (p.flags & RCP_F_DIST) != 0u;
  const rc_i64 stride = (rc_i64)gridDim.x * blockDim.x;
  for (rc_i64 j0 = (rc_i64)blockIdx.x * blockDim.x + (threadIdx.x & ~31); j0 < ext; j0 += stride) {
    const rc_i64 j = j0 + lane;
    if (j == 0 && p.o_num >= 0) *(int *)outs[p.o_num] = f.err ? -1 : (int)kept;
    rc_i64 o = -1, start = 0;
    int n = 0;
    if (j < f.total) {
      rc_i64 idx = s.row_begin + j;
      o = rcp_out_row(b, s, f, p, j, cap);
      if (o >= 0) {
        start = ((const int *)b.vstart)[idx];
        n = dist ? (j + 1 < f.total ? ((const int *)b.vstart)[idx + 1] : f.nsort) - (int)start : ((const int *)b.vcount)[idx];
        if (n <= RCP_LONG) {
          for (int c0 = 0; c0 < C; c0 += 4) {
            double acc[4] = {0.0, 0.0, 0.0, 0.0};
            const int cw = C - c0 < 4 ? C - c0 : 4;
            rcp_sum_rows<LDG>(so, pts, C, c0, cw, start, n, acc);
#pragma unroll
            for (int c = 0; c < 4; c++)
              if (c < cw) feat[o * C + c0 + c] = (float)(acc[c] / (double)n);
          }
        }
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
    for (unsigned m = __ballot_sync(0xffffffffu, o >= 0 && n > RCP_LONG); m; m &= m - 1) {
      const int src = __ffs(m) - 1;
      const rc_i64 vo = __shfl_sync(0xffffffffu, o, src), vs = __shfl_sync(0xffffffffu, start, src);
      const int vn = __shfl_sync(0xffffffffu, n, src);
      rcp_long_mean<LDG>(so, pts, C, feat, vo, vs, vn, lane);
    }
  }
}
extern "C" __global__ void __launch_bounds__(RCP_THREADS, 4) points_finalize(RcPointsBufs b, RcPointsParams p) { rcp_finalize<false>(b, p); }
// Rows read through the read-only path.
extern "C" __global__ void __launch_bounds__(RCP_THREADS, 4) points_finalize_ldg(RcPointsBufs b, RcPointsParams p) { rcp_finalize<true>(b, p); }

// The same with K voxels per lane (warp chunk of 32 K voxels: voxel jw + k * 32 + lane), their
// loads in flight together: first every voxel's start and count, then every short voxel's first row
// (its first column block), then the sums in the same order as rcp_finalize (the first row, then
// the others one after another).
template <bool LDG, int K>
__device__ __forceinline__ void rcp_finalize_k(const RcPointsBufs &b, const RcPointsParams &p) {
  RCP_FIN_PROLOGUE
  const rc_i64 total = f.total;
  const rc_i64 ext = total > cap ? total : cap;
  const int C = p.cols, lane = threadIdx.x & 31, cw0 = C < 4 ? C : 4;
  const bool dist = (p.flags & RCP_F_DIST) != 0u;
  const rc_i64 stride = (rc_i64)gridDim.x * blockDim.x * K;
  for (rc_i64 jw = ((rc_i64)blockIdx.x * blockDim.x + (threadIdx.x & ~31)) * K; jw < ext; jw += stride) {
    rc_i64 o[K];
    int start[K], n[K];
#pragma unroll
    for (int k = 0; k < K; k++) {
      const rc_i64 j = jw + k * 32 + lane;
      o[k] = j < total ? rcp_out_row(b, s, f, p, j, cap) : -1;
      start[k] = 0;
      n[k] = 0;
      if (o[k] >= 0) {
        const rc_i64 idx = s.row_begin + j;
        start[k] = ((const int *)b.vstart)[idx];
        n[k] = dist ? (j + 1 < total ? ((const int *)b.vstart)[idx + 1] : f.nsort) : ((const int *)b.vcount)[idx];
      }
    }
    if (dist) {
#pragma unroll
      for (int k = 0; k < K; k++) n[k] -= start[k];
    }
    float x0[K][4];
#pragma unroll
    for (int k = 0; k < K; k++) {
      const bool sh = o[k] >= 0 && n[k] <= RCP_LONG;
      const float *r = pts + (sh ? (rc_i64)so.row(start[k]) * C : 0);
#pragma unroll
      for (int c = 0; c < 4; c++) x0[k][c] = (sh && c < cw0) ? rcp_ld<LDG>(r + c) : 0.f;
    }
#pragma unroll
    for (int k = 0; k < K; k++) {
      const rc_i64 j = jw + k * 32 + lane;
      if (j == 0 && p.o_num >= 0) *(int *)outs[p.o_num] = f.err ? -1 : (int)kept;
      if (o[k] >= 0) {
        const rc_i64 ok = o[k];
        if (n[k] <= RCP_LONG) {
          for (int c0 = 0; c0 < C; c0 += 4) {
            double acc[4] = {0.0, 0.0, 0.0, 0.0};
            const int cw = C - c0 < 4 ? C - c0 : 4;
            if (c0 == 0) {
#pragma unroll
              for (int c = 0; c < 4; c++)
                if (c < cw) acc[c] += (double)x0[k][c];
              rcp_sum_rows<LDG>(so, pts, C, 0, cw, start[k] + 1, n[k] - 1, acc);
            } else {
              rcp_sum_rows<LDG>(so, pts, C, c0, cw, start[k], n[k], acc);
            }
#pragma unroll
            for (int c = 0; c < 4; c++)
              if (c < cw) feat[ok * C + c0 + c] = (float)(acc[c] / (double)n[k]);
          }
        }
        if (cnt) cnt[ok] = n[k];
        if (crd)
          for (int a = 0; a < 3; a++) crd[ok * 3 + a] = ((const int *)b.vcoord)[(s.row_begin + j) * 3 + a];
      }
      if (p.max_points > 0 && j >= kept && j < cap) {
        for (int c = 0; c < C; c++) feat[j * C + c] = 0.f;
        if (cnt) cnt[j] = 0;
        if (crd)
          for (int a = 0; a < 3; a++) crd[j * 3 + a] = 0;
      }
    }
#pragma unroll
    for (int k = 0; k < K; k++) {
      for (unsigned m = __ballot_sync(0xffffffffu, o[k] >= 0 && n[k] > RCP_LONG); m; m &= m - 1) {
        const int src = __ffs(m) - 1;
        const rc_i64 vo = __shfl_sync(0xffffffffu, o[k], src);
        const int vs = __shfl_sync(0xffffffffu, start[k], src), vn = __shfl_sync(0xffffffffu, n[k], src);
        rcp_long_mean<LDG>(so, pts, C, feat, vo, vs, vn, lane);
      }
    }
  }
}
extern "C" __global__ void __launch_bounds__(RCP_THREADS, 3) points_finalize2(RcPointsBufs b, RcPointsParams p) { rcp_finalize_k<true, 2>(b, p); }
extern "C" __global__ void __launch_bounds__(RCP_THREADS, 2) points_finalize4(RcPointsBufs b, RcPointsParams p) { rcp_finalize_k<true, 4>(b, p); }
