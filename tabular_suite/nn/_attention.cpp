// Attention over few tokens per sample (AutoInt's fields, FT-Transformer's features) on CPU:
// softmax(scale q k^T) v per (sample, head), forward (optionally causal) and backward, with dropout
// on the probabilities, in fp32 (t, d <= 64).
//
// PyTorch's batched GEMMs cost ~160 ns per 16 x 16 x 16 matrix here and the per-head
// layout copies, casts and softmax passes around them cost more than the products; this
// kernel reads the token-major (any strides, last axis contiguous) q/k/v of a projection
// directly, keeps a (sample, head)'s tiles in small local buffers (L1) and vector registers
// and writes the token-major output or gradients, one pass. Tokens and head dims are padded
// to 16-lane vectors (GCC/Clang vector extensions; the compiler maps them to AVX-512, AVX2
// pairs or NEON quads).
// Built on first use by tabular_suite.nn.native (plain C++, no PyTorch headers).
#include <cstdint>
#include <cstring>
#include <type_traits>
#ifdef __AVX512BF16__
#include <immintrin.h>
#endif

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

namespace {

constexpr int L = 16;

inline float bf2f(uint16_t x) { uint32_t u = uint32_t(x) << 16; float f; std::memcpy(&f, &u, 4); return f; }
inline uint16_t f2bf(float f) {  // round to nearest even; NaN stays NaN
    uint32_t u; std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
}

typedef uint16_t v16h __attribute__((vector_size(32)));
typedef uint32_t v16u __attribute__((vector_size(64)));

inline v16 bf2f(v16h x) {
    v16u u = __builtin_convertvector(x, v16u) << 16;
    v16 f; std::memcpy(&f, &u, sizeof(f));
    return f;
}
inline v16h f2bf(v16 f) {
#ifdef __AVX512BF16__  // one instruction: the same rounding (to nearest even, NaN kept; subnormals to 0)
    const __m256bh b = _mm512_cvtneps_pbh(__m512(f));
    v16h y; std::memcpy(&y, &b, sizeof(y));
    return y;
#else
    v16u u; std::memcpy(&u, &f, sizeof(u));
    v16u r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    r = (u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r;
    return __builtin_convertvector(r, v16h);
#endif
}

// One row of d values to / from fp32 (whole 16-lane chunks as vectors).
template <bool BF16> inline void load_row(const void* base, int64_t off, int d, float* dst) {
    if (!BF16) { std::memcpy(dst, static_cast<const float*>(base) + off, sizeof(float) * d); return; }
    const uint16_t* p = static_cast<const uint16_t*>(base) + off;
    int c = 0;
    for (; c + L <= d; c += L) {
        v16h x; std::memcpy(&x, p + c, sizeof(x));
        v16 f = bf2f(x); std::memcpy(dst + c, &f, sizeof(f));
    }
    for (; c < d; c++) dst[c] = bf2f(p[c]);
}
template <bool BF16> inline void store_row(void* base, int64_t off, int d, const float* src) {
    if (!BF16) { std::memcpy(static_cast<float*>(base) + off, src, sizeof(float) * d); return; }
    uint16_t* p = static_cast<uint16_t*>(base) + off;
    int c = 0;
    for (; c + L <= d; c += L) {
        v16 f; std::memcpy(&f, src + c, sizeof(f));
        v16h x = f2bf(f); std::memcpy(p + c, &x, sizeof(x));
    }
    for (; c < d; c++) p[c] = f2bf(src[c]);
}

inline v16 splat(float x) { return x - v16{}; }  // (x - 0 folds to a broadcast; 0 + x would not)
inline v16 vload(const float* p) { v16 v; std::memcpy(&v, p, sizeof(v)); return v; }
inline void vstore(float* p, v16 v) { std::memcpy(p, &v, sizeof(v)); }

// 2^x for x <= 0 (below -126 taken as -126, i.e. ~1e-38): exponent from the integer part,
// degree-6 polynomial for the fraction (relative error ~2e-7).
inline v16 exp2_neg(v16 x) {
    x = x < -126.0f ? splat(-126.0f) : x;
    v16 fl = __builtin_convertvector(__builtin_convertvector(x, v16i), v16);  // toward zero
    fl = fl > x ? fl - 1.0f : fl;                                            // floor
    v16 f = x - fl;
    v16 p = splat(1.535336188319500e-4f);
    p = p * f + 1.339887440266574e-3f;
    p = p * f + 9.618437357674640e-3f;
    p = p * f + 5.550332471162809e-2f;
    p = p * f + 2.402264791363012e-1f;
    p = p * f + 6.931472028550421e-1f;
    p = p * f + 1.0f;
    v16i e = (__builtin_convertvector(fl, v16i) + 127) << 23;
    v16 s; std::memcpy(&s, &e, sizeof(s));
    return p * s;
}

struct View { const void* p; int64_t sn, st, sh; };  // element strides of sample, token, head
struct Out { void* p; int64_t sn, st, sh; };

// Dropout on the probabilities: probability (key j, query i) of (sample, head) bh is kept when a
// hash of (seed, bh, j, i) is at least `threshold` (= rate * 2^32), and then scaled by 1 / (1 -
// rate). The backward pass hashes the same counters again: no mask is stored.
// MurmurHash3's finaliser (every input bit reaches every output bit), on a uint32_t or per lane
template <class U> inline U fmix32(U x) {
    x ^= x >> 16; x *= 0x85ebca6bu; x ^= x >> 13; x *= 0xc2b2ae35u; x ^= x >> 16;
    return x;
}
struct Dropout {
    uint32_t threshold = 0;  // 0: no dropout
    float inv_keep = 1.f;
    uint64_t seed = 0;
    uint32_t base(int64_t bh) const {
        return fmix32(uint32_t(seed) ^ fmix32(uint32_t(seed >> 32) + fmix32(uint32_t(bh) ^ fmix32(uint32_t(bh >> 32)))));
    }
    // 1 / (1 - rate) where key j's probability for the queries of lane block u is kept, else 0
    v16 scale(uint32_t b, int j, int u) const {
        const v16u lanes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
        const v16u h = fmix32(b + uint32_t(j) * 64u + uint32_t(u * L) + lanes);
        return h >= threshold ? splat(inv_keep) : v16{};
    }
};

// A (sample, head)'s t rows of d values, zero-padded to DC vectors and to TJ * L rows.
template <bool BF16, int TJ, int DC> inline void load_tile(const View& x, int64_t b, int hh, int t, int d, float* dst) {
    const int64_t base = b * x.sn + hh * x.sh;
    if (d == DC * L) {  // whole vectors: no tail, no padding columns
        for (int i = 0; i < t; i++)
            for (int c = 0; c < DC; c++) {
                const int64_t off = base + i * x.st + c * L;
                v16 f;
                if (BF16) { v16h y; std::memcpy(&y, static_cast<const uint16_t*>(x.p) + off, sizeof(y)); f = bf2f(y); }
                else std::memcpy(&f, static_cast<const float*>(x.p) + off, sizeof(f));
                vstore(dst + (i * DC + c) * L, f);
            }
    } else {
        for (int i = 0; i < t; i++) {
            float* row = dst + i * DC * L;
            load_row<BF16>(x.p, base + i * x.st, d, row);
            for (int c = d; c < DC * L; c++) row[c] = 0.f;
        }
    }
    for (int i = t; i < TJ * L; i++)
        for (int c = 0; c < DC; c++) vstore(dst + (i * DC + c) * L, v16{});
}

// out_r = sum_k w[k * ks + r * rs] * rows_k (r < R output rows of DC vectors, k < K): R
// independent accumulator chains (one FMA chain would wait on its own latency), each row
// vector loaded once; the weights are broadcast scalars, so w may be either matrix layout.
template <int R, int DC>
inline void combine(const float* w, int ks, int rs, const float* rows, int K, v16 (&out)[R][DC]) {
    for (int r = 0; r < R; r++)
        for (int c = 0; c < DC; c++) out[r][c] = v16{};
    for (int k = 0; k < K; k++) {
        v16 x[DC];
        for (int c = 0; c < DC; c++) x[c] = vload(rows + (k * DC + c) * L);
        for (int r = 0; r < R; r++) {
            const v16 a = splat(w[k * ks + r * rs]);
            for (int c = 0; c < DC; c++) out[r][c] += a * x[c];
        }
    }
}
// Rows per block in combine: enough independent chains, within the 32 vector registers.
template <int DC> constexpr int rows_per_block() { return DC == 1 ? 4 : DC == 2 ? 2 : 1; }
#define TS_L(...) __VA_ARGS__
// 16 x 16 transpose in registers: swap the off-diagonal blocks of 8, then of 4, 2 and 1
// lanes within each block (2 shuffles per pair of rows per stage).
#define TS_SWAP(S, A0, B0)                                                                  \
    for (int i = 0; i < L; i++)                                                              \
        if (!(i & S)) {                                                                      \
            const v16 a = m[i], b = m[i + S];                                                \
            m[i] = __builtin_shufflevector(a, b, A0);                                        \
            m[i + S] = __builtin_shufflevector(a, b, B0);                                    \
        }
inline void transpose16(v16 (&m)[L]) {
    TS_SWAP(8, TS_L(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
            TS_L(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31))
    TS_SWAP(4, TS_L(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),
            TS_L(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31))
    TS_SWAP(2, TS_L(0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
            TS_L(2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31))
    TS_SWAP(1, TS_L(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),
            TS_L(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31))
}
#undef TS_SWAP

// A loaded (TJ * L rows, DC vectors) tile transposed: DC * L rows of TJ vectors (zero padding included).
template <int TJ, int DC> inline void transpose(const float* src, float* dst) {
    for (int rb = 0; rb < TJ; rb++)
        for (int cb = 0; cb < DC; cb++) {
            v16 m[L];
            for (int r = 0; r < L; r++) m[r] = vload(src + ((rb * L + r) * DC + cb) * L);
            transpose16(m);
            for (int r = 0; r < L; r++) vstore(dst + ((cb * L + r) * TJ + rb) * L, m[r]);
        }
}

// Scores, probabilities and their gradients are kept transposed, (key j) rows of (query i)
// lanes: the softmax over j is then elementwise across rows (no horizontal reductions), and
// the products take each query's weight as a broadcast scalar. probs holds P^T per
// (sample, head): (t keys, t queries padded to whole vectors), only the backward pass reads it.
template <bool BF16, int TJ, int DC>
void forward(View q, View k, View v, Out o, float* probs, int64_t n, int h, int t, int d, float scale, bool causal,
             Dropout drop, int threads) {
    const float l2e = 1.4426950408889634f * scale;
    const v16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};  // query index within a vector
    constexpr int RS = 4, RD = rows_per_block<DC>();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t bh = 0; bh < n * h; bh++) {
        const int64_t b = bh / h;
        const int hh = int(bh % h);
        alignas(64) float Q[TJ * L * DC * L], K[TJ * L * DC * L], V[TJ * L * DC * L], Qt[DC * L * TJ * L];
        alignas(64) float S[TJ * L * TJ * L], row[DC * L];
        load_tile<BF16, TJ, DC>(q, b, hh, t, d, Q);
        load_tile<BF16, TJ, DC>(k, b, hh, t, d, K);
        load_tile<BF16, TJ, DC>(v, b, hh, t, d, V);
        transpose<TJ, DC>(Q, Qt);
        // S^T_j = sum_c K_jc Q^T_c (key rows j, query lanes), RS rows at a time; running max over real rows
        v16 m[TJ];
        for (int j0 = 0; j0 < t; j0 += RS) {
            v16 acc[RS][TJ];
            combine<RS, TJ>(K + j0 * DC * L, 1, DC * L, Qt, d, acc);
            for (int r = 0; r < RS && j0 + r < t; r++)
                for (int u = 0; u < TJ; u++) {
                    // (causal: key j's lanes i < j are masked; key 0 is seen by every query, so
                    // each lane's max is over seen keys once the masked ones are left out)
                    const v16 a = causal ? (lane + float(u * L - (j0 + r)) < 0.0f ? splat(-3.0e38f) : acc[r][u])
                                         : acc[r][u];
                    m[u] = j0 + r ? (a > m[u] ? a : m[u]) : a;
                    vstore(S + ((j0 + r) * TJ + u) * L, a);
                }
        }
        v16 sum[TJ] = {};
        for (int j = 0; j < t; j++)
            for (int u = 0; u < TJ; u++) {
                v16 e = exp2_neg((vload(S + (j * TJ + u) * L) - m[u]) * l2e);
                if (causal) e = lane + float(u * L - j) < 0.0f ? v16{} : e;  // exactly 0, gradients too
                sum[u] += e;
                vstore(S + (j * TJ + u) * L, e);
            }
        for (int u = 0; u < TJ; u++) sum[u] = 1.0f / sum[u];
        const uint32_t db = drop.base(bh);
        for (int j = 0; j < t; j++)
            for (int u = 0; u < TJ; u++) {
                const v16 p = vload(S + (j * TJ + u) * L) * sum[u];
                vstore(S + (j * TJ + u) * L, drop.threshold ? p * drop.scale(db, j, u) : p);
                if (probs) vstore(probs + ((bh * t + j) * TJ + u) * L, p);  // (before dropout)
            }
        // O_i = sum_j P_ij V_j (P_ij = S^T[j][i]), RD query rows at a time
        for (int i0 = 0; i0 < t; i0 += RD) {
            v16 acc[RD][DC];
            combine<RD, DC>(S + i0, TJ * L, 1, V, t, acc);
            for (int r = 0; r < RD && i0 + r < t; r++) {
                for (int c = 0; c < DC; c++) vstore(row + c * L, acc[r][c]);
                store_row<BF16>(o.p, b * o.sn + (i0 + r) * o.st + hh * o.sh, d, row);
            }
        }
    }
}

template <bool BF16, int TJ, int DC>
void backward(View q, View k, View v, View go, const float* probs, Out dq, Out dk, Out dv,
              int64_t n, int h, int t, int d, float scale, Dropout drop, int threads) {
    constexpr int RS = 4, RD = rows_per_block<DC>();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t bh = 0; bh < n * h; bh++) {
        const int64_t b = bh / h;
        const int hh = int(bh % h);
        alignas(64) float Q[TJ * L * DC * L], K[TJ * L * DC * L], V[TJ * L * DC * L], G[TJ * L * DC * L];
        alignas(64) float Gt[DC * L * TJ * L], P[TJ * L * TJ * L], dS[TJ * L * TJ * L], row[DC * L];
        alignas(64) float Pd[TJ * L * TJ * L];  // the probabilities after dropout (dV's weights)
        load_tile<BF16, TJ, DC>(q, b, hh, t, d, Q);
        load_tile<BF16, TJ, DC>(k, b, hh, t, d, K);
        load_tile<BF16, TJ, DC>(v, b, hh, t, d, V);
        load_tile<BF16, TJ, DC>(go, b, hh, t, d, G);
        transpose<TJ, DC>(G, Gt);
        // P^T rows as stored (their padded query lanes are finite and never reach a result);
        // rows past t zero, as a block of RD rows may read them
        const float* Pg = probs + bh * t * TJ * L;
        const uint32_t db = drop.base(bh);
        for (int j = 0; j < TJ * L; j++)
            for (int u = 0; u < TJ; u++) {
                const v16 p = j < t ? vload(Pg + (j * TJ + u) * L) : v16{};
                vstore(P + (j * TJ + u) * L, p);
                if (drop.threshold) vstore(Pd + (j * TJ + u) * L, j < t ? p * drop.scale(db, j, u) : v16{});
                if (j >= t) vstore(dS + (j * TJ + u) * L, v16{});
            }
        const float* PV = drop.threshold ? Pd : P;
        // dP^T_j = sum_c V_jc dO^T_c; dS^T_j = P^T_j (dP^T_j - sum_j' P^T_j' dP^T_j') scale
        v16 rs[TJ] = {};
        for (int j0 = 0; j0 < t; j0 += RS) {
            v16 acc[RS][TJ];
            combine<RS, TJ>(V + j0 * DC * L, 1, DC * L, Gt, d, acc);
            for (int r = 0; r < RS && j0 + r < t; r++)
                for (int u = 0; u < TJ; u++) {
                    // (through dropout: the gradient of a dropped probability is 0, a kept one's scaled)
                    const v16 dp = drop.threshold ? acc[r][u] * drop.scale(db, j0 + r, u) : acc[r][u];
                    rs[u] += dp * vload(P + ((j0 + r) * TJ + u) * L);
                    vstore(dS + ((j0 + r) * TJ + u) * L, dp);
                }
        }
        for (int j = 0; j < t; j++)
            for (int u = 0; u < TJ; u++) {
                float* ds = dS + (j * TJ + u) * L;
                vstore(ds, vload(P + (j * TJ + u) * L) * (vload(ds) - rs[u]) * scale);
            }
        // dV_j = sum_i P_ij dO_i, dK_j = sum_i dS_ij Q_i (P_ij = P^T[j][i])
        for (int j0 = 0; j0 < t; j0 += RD) {
            v16 av[RD][DC], ak[RD][DC];
            combine<RD, DC>(PV + j0 * TJ * L, 1, TJ * L, G, t, av);
            combine<RD, DC>(dS + j0 * TJ * L, 1, TJ * L, Q, t, ak);
            for (int r = 0; r < RD && j0 + r < t; r++) {
                for (int c = 0; c < DC; c++) vstore(row + c * L, av[r][c]);
                store_row<BF16>(dv.p, b * dv.sn + (j0 + r) * dv.st + hh * dv.sh, d, row);
                for (int c = 0; c < DC; c++) vstore(row + c * L, ak[r][c]);
                store_row<BF16>(dk.p, b * dk.sn + (j0 + r) * dk.st + hh * dk.sh, d, row);
            }
        }
        // dQ_i = sum_j dS_ij K_j (dS_ij = dS^T[j][i])
        for (int i0 = 0; i0 < t; i0 += RD) {
            v16 aq[RD][DC];
            combine<RD, DC>(dS + i0, TJ * L, 1, K, t, aq);
            for (int r = 0; r < RD && i0 + r < t; r++) {
                for (int c = 0; c < DC; c++) vstore(row + c * L, aq[r][c]);
                store_row<BF16>(dq.p, b * dq.sn + (i0 + r) * dq.st + hh * dq.sh, d, row);
            }
        }
    }
}

// Calls f(TJ, DC) with the template sizes for t tokens and d head dims (both 1..64), as
// std::integral_constant values.
template <int TJ, class F> void with_dc(int d, F&& f) {
    switch ((d + L - 1) / L) {
        case 1: f(std::integral_constant<int, TJ>{}, std::integral_constant<int, 1>{}); break;
        case 2: f(std::integral_constant<int, TJ>{}, std::integral_constant<int, 2>{}); break;
        case 3: f(std::integral_constant<int, TJ>{}, std::integral_constant<int, 3>{}); break;
        default: f(std::integral_constant<int, TJ>{}, std::integral_constant<int, 4>{});
    }
}
template <class F> void with_sizes(int t, int d, F&& f) {
    switch ((t + L - 1) / L) {
        case 1: with_dc<1>(d, f); break;
        case 2: with_dc<2>(d, f); break;
        case 3: with_dc<3>(d, f); break;
        default: with_dc<4>(d, f);
    }
}

Dropout make_dropout(float rate, uint64_t seed) {
    Dropout drop;
    if (rate > 0.f) {
        const double th = double(rate) * 4294967296.0;
        drop.threshold = th >= 4294967295.0 ? 4294967295u : uint32_t(th);
        drop.inv_keep = float(1.0 / (1.0 - double(rate)));
        drop.seed = seed;
    }
    return drop;
}

}  // namespace

extern "C" {

// 1 when built with OpenMP (the loops over samples and heads then use `threads` threads).
int ts_openmp() {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

// Tensors are (sample, token, head, dim) with the given element strides (dim contiguous);
// probs is a contiguous (n, h, t, 16 * ceil(t / 16)) fp32 buffer for the backward pass (may be
// null in the forward pass). t, d in 1..64; causal: query i sees keys j <= i; dropout: the rate on the
// probabilities (0 <= rate < 1), its mask drawn from seed (the backward pass takes the same two).
// Returns 0 on success.
int ts_attention_forward(int bf16, const void* q, const int64_t* qs, const void* k, const int64_t* ks,
                         const void* v, const int64_t* vs, void* o, const int64_t* os, float* probs,
                         int64_t n, int h, int t, int d, float scale, int causal, float dropout, uint64_t seed,
                         int threads) {
    if (t < 1 || t > 64 || d < 1 || d > 64 || !(dropout >= 0.f && dropout < 1.f)) return 1;
    const Dropout drop = make_dropout(dropout, seed);
    View Q{q, qs[0], qs[1], qs[2]}, K{k, ks[0], ks[1], ks[2]}, V{v, vs[0], vs[1], vs[2]};
    Out O{o, os[0], os[1], os[2]};
    with_sizes(t, d, [&](auto tj, auto dc) {
        constexpr int TJ = decltype(tj)::value, DC = decltype(dc)::value;
        if (bf16) forward<true, TJ, DC>(Q, K, V, O, probs, n, h, t, d, scale, causal != 0, drop, threads);
        else forward<false, TJ, DC>(Q, K, V, O, probs, n, h, t, d, scale, causal != 0, drop, threads);
    });
    return 0;
}

int ts_attention_backward(int bf16, const void* q, const int64_t* qs, const void* k, const int64_t* ks,
                          const void* v, const int64_t* vs, const void* go, const int64_t* gs, const float* probs,
                          void* dq, const int64_t* dqs, void* dk, const int64_t* dks, void* dv, const int64_t* dvs,
                          int64_t n, int h, int t, int d, float scale, float dropout, uint64_t seed, int threads) {
    if (t < 1 || t > 64 || d < 1 || d > 64 || !(dropout >= 0.f && dropout < 1.f)) return 1;
    const Dropout drop = make_dropout(dropout, seed);
    View Q{q, qs[0], qs[1], qs[2]}, K{k, ks[0], ks[1], ks[2]}, V{v, vs[0], vs[1], vs[2]}, G{go, gs[0], gs[1], gs[2]};
    Out dQ{dq, dqs[0], dqs[1], dqs[2]}, dK{dk, dks[0], dks[1], dks[2]}, dV{dv, dvs[0], dvs[1], dvs[2]};
    with_sizes(t, d, [&](auto tj, auto dc) {
        constexpr int TJ = decltype(tj)::value, DC = decltype(dc)::value;
        if (bf16) backward<true, TJ, DC>(Q, K, V, G, probs, dQ, dK, dV, n, h, t, d, scale, drop, threads);
        else backward<false, TJ, DC>(Q, K, V, G, probs, dQ, dK, dV, n, h, t, d, scale, drop, threads);
    });
    return 0;
}

}
