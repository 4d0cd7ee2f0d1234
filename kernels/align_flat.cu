// align_flat.cu: the flat forms of the align kernel (v6), after align_core.cu and align.cu in one
// program (the Rust kernel registry concatenates them), picked per launch by RcAlignParams::design
// (1-5; 0 is align.cu's tiled form).
//
// No shared-memory windows, no per-block setup, no barrier before the items: a block is a tile of
// p.tile reference steps of one sample (the same tile map as align.cu), one thread per (stream,
// step) item, stream-major (a warp holds consecutive steps of one stream: one control path, and
// neighbouring lanes' timestamp probes share sectors). Each item finds its rows straight from the
// stream's global timestamps (RcAlGView::search: an interpolation guess between the stream's ends,
// which the descriptor carries, 8 timestamps around it loaded together, an exponential search only
// when the probe misses), then runs align.cu's rc_al_locate (NaN walks, max_gap, fill) unchanged.
// - design 1, flat: the item writes its stream's channels of the fused row straight to global memory.
// - design 2, staged: into the block's output tile in dynamic shared memory (p.smem bytes; straight
//   to global memory when the tile does not fit), one barrier, then 16-byte stores (rc_al_store_tile).
// - design 4, rows: the items leave (i0, i1, w) in shared memory (16 * p.tile * N bytes,
//   stream-major), one barrier, then the block writes its rows as the gather kernel does
//   (rc_al_rows: contiguous stores, consecutive lanes reading consecutive channels of a row).
// - design 3, locate + gather: two launches. align_locate_* leaves each item's (i0, i1, w) in global
//   scratch at p.rec (per block [w][i0][i1] x p.tile * N, stream-major, 16 * p.tile * N bytes), and
//   align_gather_* writes the rows from it (align.cu's rc_al_rows: one thread per (step, quaternion
//   group), one per other output element, contiguous stores), reading only the rows it needs.
// - design 5, regs: staged, and the item's NaN test loads rows lo and lo + 1 in 16-byte chunks and
//   leaves them in the item's slot of shared memory (RcAlRView, RC_AL_SLOT bytes per thread after
//   the staged tile), from which the write reads them (rc_al_write_regs): the rows leave global
//   memory once, in a quarter of the loads.

#ifndef RC_ALIGN_FLAT_MIN_BLOCKS
#define RC_ALIGN_FLAT_MIN_BLOCKS 4
#endif
#ifndef RC_ALIGN_GATHER_MIN_BLOCKS
#define RC_ALIGN_GATHER_MIN_BLOCKS 4
#endif

template <bool C, typename X, typename Y> struct RcAlPick { typedef Y type; };
template <typename X, typename Y> struct RcAlPick<true, X, Y> { typedef X type; };

// One (stream q, step k) item of a flat form: locate from global memory, valid flag, then the fused
// row's channels to orow (rec == nullptr) or (i0, i1, w) to the block's records.
template <typename TS, typename E, bool REGS = false>
__device__ __forceinline__ void rc_al_gitem(const RcAlignSample *s, const RcAlignParams &p, int q, rc_i64 k0, int k,
                                            typename E::bits *orow, unsigned char *rec, unsigned char *slot = nullptr) {
  typedef typename E::bits B;
  const int ns = p.num_streams;
  const TS t = rc_al_target<TS>(s, p, k0 + k);
  if (q == 0) ((TS *)s->out_ts)[k0 + k] = t;
  typename RcAlPick<REGS, RcAlRView<TS, B>, RcAlGView<TS, B>>::type v;
  v.ts = (const TS *)s->ts[q];
  v.d = (const B *)s->data[q];
  v.n = (int)s->len[q];
  v.c = (int)p.streams[q].channels;
  if constexpr (REGS) {
    v.held = -1;
    v.slot = slot;
  }
  int i0, i1, ok;
  double w;
  rc_al_locate<TS, E>(v, t, rc_al_ts_bits<TS>(s->first[q]), rc_al_ts_bits<TS>(s->last[q]), p.streams[q].method,
                      p.streams[q].max_gap, p.fill, i0, i1, w, ok);
  ((unsigned char *)s->valid)[(k0 + k) * ns + q] = (unsigned char)ok;
  if (rec != nullptr) {
    rc_al_put_rec(rec, p.tile * ns, q * p.tile + k, i0, i1, w);  // stream-major: a warp's stores are contiguous
    return;
  }
  if constexpr (REGS) rc_al_write_regs<E>(v, p, q, i0, i1, w, orow);
  else rc_al_write<E>(v, p, q, i0, i1, w, orow);
}

// This block's records (design 3).
__device__ __forceinline__ unsigned char *rc_al_rec(const RcAlignParams &p) {
  return (unsigned char *)p.rec + (rc_u64)blockIdx.x * 16ull * (rc_u64)p.tile * (rc_u64)p.num_streams;
}

// form 1 flat, 2 staged, 3 locate, 5 regs (staged, rows through a shared-memory slot) (the design numbers).
template <typename TS, typename E>
__device__ __forceinline__ void rc_al_flat_block(const RcAlignSample *s, const RcAlignParams &p, rc_i64 k0, int kcount,
                                                 int form, unsigned char *sbuf) {
  typedef typename E::bits B;
  const int ns = p.num_streams;
  const int C = p.total_channels;
  const int K = p.tile;
  B *out = (B *)s->out + k0 * C;
  int st = -1;
  // Design 5: the items' slots at the end of the dynamic shared memory, the staged tile before them.
  const int slots = form == 5 ? RC_AL_SLOT * (int)blockDim.x : 0;
  if (form == 2 || form == 5) {
    const rc_u64 gout = (rc_u64)out;
    const rc_i64 need = (rc_i64)(gout & 15) + (rc_i64)kcount * C * (rc_i64)sizeof(B);
    if (need + 15 <= (rc_i64)((p.smem - slots) & ~15)) st = (int)(gout & 15);
  }
  unsigned char *rec = form == 3 ? rc_al_rec(p) : nullptr;
  for (int j = threadIdx.x; j < K * ns; j += blockDim.x) {
    const int q = j / K, k = j - q * K;
    if (k >= kcount) continue;
    B *orow = st >= 0 ? (B *)(sbuf + st) + (rc_i64)k * C : out + (rc_i64)k * C;
    if (form == 5) rc_al_gitem<TS, E, true>(s, p, q, k0, k, orow, rec, sbuf + (p.smem - slots) + RC_AL_SLOT * threadIdx.x);
    else rc_al_gitem<TS, E>(s, p, q, k0, k, orow, rec);
  }
  if (st < 0) return;  // uniform across the block
  __syncthreads();
  rc_al_store_tile<B>(s, k0, kcount, C, sbuf);
}

// Design 4: the items' (i0, i1, w) to shared memory, one barrier, then the block's rows.
template <typename TS, typename E>
__device__ __forceinline__ void rc_al_rows_block(const RcAlignSample *s, const RcAlignParams &p, rc_i64 k0, int kcount,
                                                 unsigned char *sbuf) {
  typedef typename E::bits B;
  const int ns = p.num_streams;
  const int K = p.tile;
  for (int j = threadIdx.x; j < K * ns; j += blockDim.x) {
    const int q = j / K, k = j - q * K;
    if (k >= kcount) continue;
    rc_al_gitem<TS, E>(s, p, q, k0, k, nullptr, sbuf);
  }
  __syncthreads();
  rc_al_rows<E>(s, p, k0, kcount, sbuf, true,
                [&](int q, int j, int cs) { return (const B *)s->data[q] + (rc_i64)j * cs; });
}

template <typename E>
__device__ __forceinline__ void rc_align_rows(const RcAlignSample *__restrict__ samples,
                                              const int *__restrict__ tile_sample, const RcAlignParams &p) {
  RC_EXTERN_SHARED(sbuf);
  rc_i64 k0;
  int kcount;
  const RcAlignSample *s = rc_al_tile(samples, tile_sample, p, k0, kcount);
  if (kcount <= 0) return;  // uniform across the block
  if (p.ts_int) rc_al_rows_block<rc_i64, E>(s, p, k0, kcount, sbuf);
  else rc_al_rows_block<double, E>(s, p, k0, kcount, sbuf);
}

// TSK: 0 both timestamp kinds (p.ts_int at run time), 1 float64 seconds only, 2 int64 ns only (the
// staged form's _d_ / _i_ entry points, the default: half the code, 56 B of stack at 64 registers
// instead of 96 B; 50.8 against 54.8 us on an H100, benchmarks/results/gpu_align_h100_v9_tssplit*).
template <typename E, int TSK = 0>
__device__ __forceinline__ void rc_align_flat(const RcAlignSample *__restrict__ samples,
                                              const int *__restrict__ tile_sample, const RcAlignParams &p, int form) {
  RC_EXTERN_SHARED(sbuf);
  rc_i64 k0;
  int kcount;
  const RcAlignSample *s = rc_al_tile(samples, tile_sample, p, k0, kcount);
  if (kcount <= 0) return;  // uniform across the block
  if constexpr (TSK == 1) {
    rc_al_flat_block<double, E>(s, p, k0, kcount, form, sbuf);
  } else if constexpr (TSK == 2) {
    rc_al_flat_block<rc_i64, E>(s, p, k0, kcount, form, sbuf);
  } else {
    if (p.ts_int) rc_al_flat_block<rc_i64, E>(s, p, k0, kcount, form, sbuf);
    else rc_al_flat_block<double, E>(s, p, k0, kcount, form, sbuf);
  }
}

template <typename E>
__device__ __forceinline__ void rc_align_gather(const RcAlignSample *__restrict__ samples,
                                                const int *__restrict__ tile_sample, const RcAlignParams &p) {
  typedef typename E::bits B;
  rc_i64 k0;
  int kcount;
  const RcAlignSample *s = rc_al_tile(samples, tile_sample, p, k0, kcount);
  if (kcount <= 0) return;
  rc_al_rows<E>(s, p, k0, kcount, rc_al_rec(p), true,
                [&](int q, int j, int cs) { return (const B *)s->data[q] + (rc_i64)j * cs; });
}

#define RC_ALIGN_FLAT_ENTRIES(E, SUFFIX, MIN_BLOCKS, GATHER_MIN_BLOCKS)                               \
  extern "C" __global__ void __launch_bounds__(256, MIN_BLOCKS)                                       \
      align_flat_##SUFFIX(const RcAlignSample *__restrict__ samples, const int *__restrict__ tile_sample, \
                          RcAlignParams p) {                                                          \
    rc_align_flat<E>(samples, tile_sample, p, 1);                                                     \
  }                                                                                                   \
  extern "C" __global__ void __launch_bounds__(256, MIN_BLOCKS)                                       \
      align_staged_##SUFFIX(const RcAlignSample *__restrict__ samples, const int *__restrict__ tile_sample, \
                            RcAlignParams p) {                                                        \
    rc_align_flat<E>(samples, tile_sample, p, 2);                                                     \
  }                                                                                                   \
  extern "C" __global__ void __launch_bounds__(256, MIN_BLOCKS)                                       \
      align_staged_d_##SUFFIX(const RcAlignSample *__restrict__ samples, const int *__restrict__ tile_sample, \
                              RcAlignParams p) {                                                      \
    rc_align_flat<E, 1>(samples, tile_sample, p, 2);                                                  \
  }                                                                                                   \
  extern "C" __global__ void __launch_bounds__(256, MIN_BLOCKS)                                       \
      align_staged_i_##SUFFIX(const RcAlignSample *__restrict__ samples, const int *__restrict__ tile_sample, \
                              RcAlignParams p) {                                                      \
    rc_align_flat<E, 2>(samples, tile_sample, p, 2);                                                  \
  }                                                                                                   \
  extern "C" __global__ void __launch_bounds__(256, MIN_BLOCKS)                                       \
      align_regs_##SUFFIX(const RcAlignSample *__restrict__ samples, const int *__restrict__ tile_sample, \
                          RcAlignParams p) {                                                          \
    rc_align_flat<E>(samples, tile_sample, p, 5);                                                     \
  }                                                                                                   \
  extern "C" __global__ void __launch_bounds__(256, MIN_BLOCKS)                                       \
      align_rows_##SUFFIX(const RcAlignSample *__restrict__ samples, const int *__restrict__ tile_sample, \
                          RcAlignParams p) {                                                          \
    rc_align_rows<E>(samples, tile_sample, p);                                                        \
  }                                                                                                   \
  extern "C" __global__ void __launch_bounds__(256, MIN_BLOCKS)                                       \
      align_locate_##SUFFIX(const RcAlignSample *__restrict__ samples, const int *__restrict__ tile_sample, \
                            RcAlignParams p) {                                                        \
    rc_align_flat<E>(samples, tile_sample, p, 3);                                                     \
  }                                                                                                   \
  extern "C" __global__ void __launch_bounds__(256, GATHER_MIN_BLOCKS)                                \
      align_gather_##SUFFIX(const RcAlignSample *__restrict__ samples, const int *__restrict__ tile_sample, \
                            RcAlignParams p) {                                                        \
    rc_align_gather<E>(samples, tile_sample, p);                                                      \
  }

RC_ALIGN_FLAT_ENTRIES(RcF32, f32, RC_ALIGN_FLAT_MIN_BLOCKS, RC_ALIGN_GATHER_MIN_BLOCKS)
RC_ALIGN_FLAT_ENTRIES(RcF64, f64, RC_ALIGN_FLAT_MIN_BLOCKS, RC_ALIGN_GATHER_MIN_BLOCKS)
RC_ALIGN_FLAT_ENTRIES(RcF16, f16, RC_ALIGN_FLAT_MIN_BLOCKS, RC_ALIGN_GATHER_MIN_BLOCKS)
RC_ALIGN_FLAT_ENTRIES(RcBF16, bf16, RC_ALIGN_FLAT_MIN_BLOCKS, RC_ALIGN_GATHER_MIN_BLOCKS)

// Tuning builds (-DRC_ALIGN_VARIANTS=2, or any value with bit 1 set): the float32 flat forms under
// other register caps, picked by ROBOCACHE_ALIGN_VARIANT (align_<form>_f32_<variant>): free (no cap),
// r48 (5 blocks of 256), r40 (6), r32 (8).
#if RC_ALIGN_VARIANTS & 2
RC_ALIGN_FLAT_ENTRIES(RcF32, f32_free, 1, 1)
RC_ALIGN_FLAT_ENTRIES(RcF32, f32_r48, 5, 5)
RC_ALIGN_FLAT_ENTRIES(RcF32, f32_r40, 6, 6)
RC_ALIGN_FLAT_ENTRIES(RcF32, f32_r32, 8, 8)
#endif
