/* numpynn._fused: the element-wise hot spots of training as one C loop each.
 *
 * The readable reference is the NumPy code in numpynn/_kernels.py; every loop here
 * does the same float operations in the same order (each product, sum, quotient and
 * square root rounded to the array's type, no fused multiply-add, no fast-math), so
 * both give the same bits, and tests/test_kernels.py checks that they do.
 *
 * Built by the package's own build (setup.py, an optional extension: without a C
 * compiler the install goes on and training uses the NumPy kernels). Arrays come in
 * through the buffer protocol, so the build needs no NumPy headers. Each function
 * returns True when it did the work, False when the arguments are not for it (a
 * dtype, shape or layout it does not take): the caller then runs the NumPy reference.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* One copy of each loop per instruction set, chosen when the module loads (GCC on
 * x86-64 Linux); elsewhere the compiler's default target. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

/* Release the GIL around loops of at least this many elements (other threads run meanwhile). */
#define NOGIL_MIN 4096

/* --- the loops ------------------------------------------------------------------------------ */

/* Adam, bias corrections folded into s and e:
 * m <- b1 m + c1 g;  v <- b2 v + c2 g^2;  p <- p - (m / (sqrt(v) + e)) s */
#define ADAM_LOOP(T, SQRT)                                                       \
    for (Py_ssize_t i = 0; i < n; i++) {                                         \
        T gi = g[i];                                                             \
        T mi = b1 * m[i] + c1 * gi;                                              \
        T vi = b2 * v[i] + (gi * gi) * c2;                                       \
        m[i] = mi;                                                               \
        v[i] = vi;                                                               \
        p[i] -= (mi / (SQRT(vi) + e)) * s;                                       \
    }

CLONES static void adam_f4(Py_ssize_t n, float *restrict p, const float *restrict g, float *restrict m,
                           float *restrict v, float b1, float c1, float b2, float c2, float s, float e)
{
    ADAM_LOOP(float, sqrtf)
}

CLONES static void adam_f8(Py_ssize_t n, double *restrict p, const double *restrict g, double *restrict m,
                           double *restrict v, double b1, double c1, double b2, double c2, double s,
                           double e)
{
    ADAM_LOOP(double, sqrt)
}

/* e^x in float32 for x already clipped to [-88, 89], step for step as numpynn._kernels.exp32:
 * n = rint(x log2 e) by the rounding of x log2 e + 1.5 * 2^23 (v); r = (x - n C1) - n C2
 * (ln 2 = C1 + C2, n C1 exact); e^r = ((P(r) r^2) + r) + 1 (Cephes' expf); 2^n from v's bits
 * (its low bits hold n; n = -127 gives the bits of 0, n = 128 those of infinity); e^x = e^r 2^n.
 * Every step one rounded float operation. */
#define EXP_LOW -88.0f
#define EXP_HIGH 89.0f
#define EXP_LOG2E 0x1.715476p+0f
#define EXP_ROUND 12582912.0f /* 1.5 * 2^23 */
#define EXP_C1 0x1.63p-1f      /* 0.693359375 */
#define EXP_C2 -0x1.bd0106p-13f /* -2.12194440e-4 */
#define EXP_P0 0x1.a0d2cep-13f
#define EXP_P1 0x1.6e879cp-10f
#define EXP_P2 0x1.111210p-7f
#define EXP_P3 0x1.555382p-5f
#define EXP_P4 0x1.555554p-3f
#define EXP_P5 0x1.000000p-1f
#define CLIP(x) ((x) < EXP_LOW ? EXP_LOW : ((x) > EXP_HIGH ? EXP_HIGH : (x)))

static inline float exp32(float x)
{
    float v = x * EXP_LOG2E + EXP_ROUND;
    float n = v - EXP_ROUND;
    float r = (x - n * EXP_C1) - n * EXP_C2;
    float p = ((((EXP_P0 * r + EXP_P1) * r + EXP_P2) * r + EXP_P3) * r + EXP_P4) * r + EXP_P5;
    p = ((p * (r * r)) + r) + 1.0f;
    uint32_t bits, two_bits;
    memcpy(&bits, &v, 4);
    two_bits = (bits - (0x4B400000u - 127u)) << 23; /* (n + 127) << 23: the bits of 2^n */
    float two;
    memcpy(&two, &two_bits, 4);
    return p * two;
}

/* a = sigma(z) = 1 / (1 + e^x), x = -z clipped to [-88, 89], over all rows * k values (a may be z) */
CLONES static void sigmoid_f4(Py_ssize_t rows, Py_ssize_t k, float *a, const float *z)
{
    Py_ssize_t count = rows * k;
    for (Py_ssize_t i = 0; i < count; i++) {
        float x = -z[i];
        a[i] = 1.0f / (exp32(CLIP(x)) + 1.0f);
    }
}

/* Row by row (k values each): a_j = e^{x_j} / (sum over j of e^{x_j}, from the first), x = z - max(z)
 * clipped to [-88, 89]; the max as np.max (a NaN wins). a may be z. */
CLONES static void softmax_f4(Py_ssize_t rows, Py_ssize_t k, float *a, const float *z)
{
    for (Py_ssize_t i = 0; i < rows; i++) {
        const float *zi = z + i * k;
        float *ai = a + i * k;
        float m = zi[0];
        for (Py_ssize_t j = 1; j < k; j++)
            m = (zi[j] > m || zi[j] != zi[j]) ? zi[j] : m;
        for (Py_ssize_t j = 0; j < k; j++) {
            float x = zi[j] - m;
            ai[j] = exp32(CLIP(x));
        }
        float total = ai[0];
        for (Py_ssize_t j = 1; j < k; j++)
            total += ai[j];
        for (Py_ssize_t j = 0; j < k; j++)
            ai[j] = ai[j] / total;
    }
}

/* delta = (dC/da * a) * (1 - a), over dC/da */
CLONES static void sigmoid_delta_f4(Py_ssize_t n, float *g, const float *a)
{
    for (Py_ssize_t i = 0; i < n; i++)
        g[i] = (g[i] * a[i]) * (1.0f - a[i]);
}

CLONES static void sigmoid_delta_f8(Py_ssize_t n, double *g, const double *a)
{
    for (Py_ssize_t i = 0; i < n; i++)
        g[i] = (g[i] * a[i]) * (1.0 - a[i]);
}

/* The rows come from anywhere in a large set: ask for row r + AHEAD while row r is scaled. */
#define AHEAD 4
#if defined(__GNUC__)
#define PREFETCH_ROW(r)                                                          \
    if ((r) < rows)                                                              \
        for (Py_ssize_t k = 0; k < cols; k += 64)                                \
            __builtin_prefetch(x + idx[(r)] * cols + k, 0, 0);
#else
#define PREFETCH_ROW(r)
#endif

/* out[r, :] = x[idx[r], :] * scale: uint8 pixels gathered and scaled in one pass */
#define GATHER_SCALE_LOOP(T)                                                     \
    for (Py_ssize_t r = 0; r < AHEAD && r < rows; r++) {                         \
        PREFETCH_ROW(r)                                                          \
    }                                                                            \
    for (Py_ssize_t r = 0; r < rows; r++) {                                      \
        PREFETCH_ROW(r + AHEAD)                                                  \
        const uint8_t *src = x + idx[r] * cols;                                  \
        T *dst = out + r * cols;                                                 \
        for (Py_ssize_t j = 0; j < cols; j++)                                    \
            dst[j] = (T)src[j] * scale;                                          \
    }

CLONES static void gather_scale_f4(Py_ssize_t rows, Py_ssize_t cols, const uint8_t *restrict x,
                                   const int64_t *restrict idx, float scale, float *restrict out)
{
    GATHER_SCALE_LOOP(float)
}

CLONES static void gather_scale_f8(Py_ssize_t rows, Py_ssize_t cols, const uint8_t *restrict x,
                                   const int64_t *restrict idx, double scale, double *restrict out)
{
    GATHER_SCALE_LOOP(double)
}

/* out[i, y, x] = images[i, y - dy[i], x - dx[i]] * scale, 0 where that pixel is outside.
 * An image is moved as one run of h*w pixels (dst[q] = src[q - (dy*w + dx)], one long loop
 * that vectorises), then the columns that wrapped around from the row beside are zeroed. */
#define SHIFT_SCALE_LOOP(T)                                                      \
    Py_ssize_t P = h * w;                                                        \
    for (Py_ssize_t i = 0; i < n; i++) {                                         \
        Py_ssize_t sy = (Py_ssize_t)dy[i], sx = (Py_ssize_t)dx[i];               \
        Py_ssize_t y0 = sy < 0 ? 0 : (sy > h ? h : sy);                          \
        Py_ssize_t y1 = sy > 0 ? h : (h + sy < 0 ? 0 : h + sy);                  \
        Py_ssize_t x0 = sx < 0 ? 0 : (sx > w ? w : sx);                          \
        Py_ssize_t x1 = sx > 0 ? w : (w + sx < 0 ? 0 : w + sx);                  \
        Py_ssize_t off = sy * w + sx, qa = y0 * w, qb = y1 * w;                  \
        if (qa < off)                                                            \
            qa = off;                                                            \
        if (qb > P + off)                                                        \
            qb = P + off;                                                        \
        if (qb < qa)                                                             \
            qb = qa;                                                             \
        const uint8_t *src = x + i * P;                                          \
        T *dst = out + i * P;                                                    \
        for (Py_ssize_t q = 0; q < qa && q < P; q++)                             \
            dst[q] = 0;                                                          \
        for (Py_ssize_t q = qa; q < qb; q++)                                     \
            dst[q] = (T)src[q - off] * scale;                                    \
        for (Py_ssize_t q = qb; q < P; q++)                                      \
            dst[q] = 0;                                                          \
        for (Py_ssize_t y = y0; y < y1; y++) {                                   \
            for (Py_ssize_t j = 0; j < x0; j++)                                  \
                dst[y * w + j] = 0;                                              \
            for (Py_ssize_t j = x1; j < w; j++)                                  \
                dst[y * w + j] = 0;                                              \
        }                                                                        \
    }

CLONES static void shift_scale_f4(Py_ssize_t n, Py_ssize_t h, Py_ssize_t w, const uint8_t *restrict x,
                                  const int64_t *restrict dy, const int64_t *restrict dx, float scale,
                                  float *restrict out)
{
    SHIFT_SCALE_LOOP(float)
}

CLONES static void shift_scale_f8(Py_ssize_t n, Py_ssize_t h, Py_ssize_t w, const uint8_t *restrict x,
                                  const int64_t *restrict dy, const int64_t *restrict dx, double scale,
                                  double *restrict out)
{
    SHIFT_SCALE_LOOP(double)
}

/* col2im: out[n, sh i + u, sw j + v, c] += gc[n, i, j, u, v, c], the offsets (u, v) in row-major
 * order, so each element of out adds its terms in the order of the NumPy reference. */
#define COL2IM_LOOP(T)                                                           \
    for (Py_ssize_t s = 0; s < n; s++) {                                         \
        T *o = out + s * Hp * Wp * C;                                            \
        const T *g = gc + s * Ho * Wo * kh * kw * C;                             \
        for (Py_ssize_t u = 0; u < kh; u++)                                      \
            for (Py_ssize_t v = 0; v < kw; v++)                                  \
                for (Py_ssize_t i = 0; i < Ho; i++)                              \
                    for (Py_ssize_t j = 0; j < Wo; j++) {                        \
                        T *restrict dst = o + ((sh * i + u) * Wp + sw * j + v) * C; \
                        const T *restrict src = g + (((i * Wo + j) * kh + u) * kw + v) * C; \
                        for (Py_ssize_t c = 0; c < C; c++)                       \
                            dst[c] += src[c];                                    \
                    }                                                            \
    }

CLONES static void col2im_f4(Py_ssize_t n, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t kh, Py_ssize_t kw,
                             Py_ssize_t C, Py_ssize_t Hp, Py_ssize_t Wp, Py_ssize_t sh, Py_ssize_t sw,
                             const float *restrict gc, float *restrict out)
{
    COL2IM_LOOP(float)
}

CLONES static void col2im_f8(Py_ssize_t n, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t kh, Py_ssize_t kw,
                             Py_ssize_t C, Py_ssize_t Hp, Py_ssize_t Wp, Py_ssize_t sh, Py_ssize_t sw,
                             const double *restrict gc, double *restrict out)
{
    COL2IM_LOOP(double)
}

/* The most elements a window may have for the C loops (larger ones: the reference). */
#define MAX_WINDOW 64

/* A max pooling's shapes, as both of its loops take them: x (n, H, W, C), the pooled arrays
 * (n, Ho, Wo, C), the kh x kw window (K elements) at strides sh, sw; off[k] is window element
 * k = u kw + v's offset in x from the window's corner. */
typedef struct {
    Py_ssize_t n, H, W, C, Ho, Wo, kh, kw, K, sh, sw, off[MAX_WINDOW];
} Pool;

#define POOL_SHAPES(p)                                                           \
    const Py_ssize_t n = (p)->n, H = (p)->H, W = (p)->W, C = (p)->C;             \
    const Py_ssize_t Ho = (p)->Ho, Wo = (p)->Wo, K = (p)->K, sh = (p)->sh, sw = (p)->sw; \
    const Py_ssize_t *off = (p)->off;

/* Max pooling, channels last: out[s, i, j, c] = the largest x[s, sh i + u, sw j + v, c] over the
 * window's elements (u, v) in row-major order, each step as np.maximum(out, x_k) takes it for
 * numbers: a > b ? a : b (a tie gives b, as np.maximum does: max(+0, -0) is -0). np.maximum
 * keeps the first NaN it meets, which this select would not:
 * the loop only notes that it met one (returns 1) and the caller then runs the reference. No
 * branch in the loops over channels (no select with a NaN test either: either one stops GCC from
 * vectorising them). */
#define MAXPOOL_LOOP(T)                                                          \
    POOL_SHAPES(p)                                                               \
    int nan = 0;                                                                 \
    for (Py_ssize_t s = 0; s < n; s++)                                           \
        for (Py_ssize_t i = 0; i < Ho; i++)                                      \
            for (Py_ssize_t j = 0; j < Wo; j++) {                                \
                T *restrict dst = out + ((s * Ho + i) * Wo + j) * C;             \
                const T *corner = x + ((s * H + sh * i) * W + sw * j) * C;       \
                for (Py_ssize_t c = 0; c < C; c++) {                             \
                    dst[c] = corner[c];                                          \
                    nan |= corner[c] != corner[c];                               \
                }                                                                \
                for (Py_ssize_t k = 1; k < K; k++) {                             \
                    const T *restrict xk = corner + off[k];                      \
                    for (Py_ssize_t c = 0; c < C; c++) {                         \
                        T a = dst[c], b = xk[c];                                 \
                        dst[c] = a > b ? a : b;                                  \
                        nan |= b != b;                                           \
                    }                                                            \
                }                                                                \
            }                                                                    \
    return nan;

CLONES static int maxpool_f4(const Pool *p, const float *restrict x, float *restrict out)
{
    MAXPOOL_LOOP(float)
}

CLONES static int maxpool_f8(const Pool *p, const double *restrict x, double *restrict out)
{
    MAXPOOL_LOOP(double)
}

/* Max pooling's backward pass for windows that do not overlap (stride >= window), channels last:
 * each window's dC/dy goes to its first arg-max (the first element (u, v) in row-major order where x
 * equals the max m; the last element where none does, e.g. for a NaN) and dC/dy * 0 to its other
 * elements, as the reference's passes: dx_k = g * hit_k with hit_k = (x_k == m) and free, free <- free
 * and not hit_k, hit_last = free. Here free and hit are T's 1 and 0 (hit = free * (x_k == m),
 * free <- free - hit), so the loop over channels has no branch, and g * hit is the reference's product. Channels
 * go in chunks of POOL_CHUNK (free lives on the stack). */
#define POOL_CHUNK 256
#define MAXPOOL_BACKWARD_LOOP(T)                                                 \
    POOL_SHAPES(p)                                                               \
    T free[POOL_CHUNK];                                                          \
    for (Py_ssize_t s = 0; s < n; s++)                                           \
        for (Py_ssize_t i = 0; i < Ho; i++)                                      \
            for (Py_ssize_t j = 0; j < Wo; j++) {                                \
                Py_ssize_t at = ((s * Ho + i) * Wo + j) * C;                     \
                Py_ssize_t corner = ((s * H + sh * i) * W + sw * j) * C;         \
                for (Py_ssize_t c0 = 0; c0 < C; c0 += POOL_CHUNK) {              \
                    Py_ssize_t cn = C - c0 < POOL_CHUNK ? C - c0 : POOL_CHUNK;   \
                    const T *restrict mw = m + at + c0, *restrict gw = g + at + c0; \
                    for (Py_ssize_t c = 0; c < cn; c++)                          \
                        free[c] = 1;                                             \
                    for (Py_ssize_t k = 0; k < K; k++) {                         \
                        const T *restrict xk = x + corner + off[k] + c0;         \
                        T *restrict dk = dx + corner + off[k] + c0;              \
                        if (k == K - 1)                                          \
                            for (Py_ssize_t c = 0; c < cn; c++)                  \
                                dk[c] = gw[c] * free[c];                         \
                        else                                                     \
                            for (Py_ssize_t c = 0; c < cn; c++) {                \
                                T hit = free[c] * (T)(xk[c] == mw[c]);           \
                                free[c] -= hit;                                  \
                                dk[c] = gw[c] * hit;                             \
                            }                                                    \
                    }                                                            \
                }                                                                \
            }

CLONES static void maxpool_backward_f4(const Pool *p, const float *x, const float *m, const float *g,
                                       float *dx)
{
    MAXPOOL_BACKWARD_LOOP(float)
}

CLONES static void maxpool_backward_f8(const Pool *p, const double *x, const double *m, const double *g,
                                        double *dx)
{
    MAXPOOL_BACKWARD_LOOP(double)
}

/* ReLU, a = np.maximum(z, 0) for numbers: z > 0 ? z : 0 (so -0 gives +0, as np.maximum's tie gives
 * its second operand). np.maximum keeps a NaN, which this select would not: the loop notes that it
 * met one (returns 1) and the caller then runs the reference. */
#define RELU_LOOP(T)                                                             \
    int nan = 0;                                                                 \
    for (Py_ssize_t i = 0; i < n; i++) {                                         \
        T v = z[i];                                                              \
        a[i] = v > 0 ? v : (T)0;                                                 \
        nan |= v != v;                                                           \
    }                                                                            \
    return nan;

CLONES static int relu_f4(Py_ssize_t n, const float *z, float *a)
{
    RELU_LOOP(float)
}

CLONES static int relu_f8(Py_ssize_t n, const double *z, double *a)
{
    RELU_LOOP(double)
}

/* delta = dC/da * (z > 0), over dC/da: the reference's np.multiply(g, z > 0), the flag as 1 or 0
 * (written as a select of 1 or 0, which GCC vectorises; a cast of the comparison it does not) */
#define RELU_DELTA_LOOP(T)                                                       \
    for (Py_ssize_t i = 0; i < n; i++) {                                         \
        T flag = z[i] > 0 ? (T)1 : (T)0;                                         \
        g[i] = g[i] * flag;                                                      \
    }

CLONES static void relu_delta_f4(Py_ssize_t n, float *restrict g, const float *restrict z)
{
    RELU_DELTA_LOOP(float)
}

CLONES static void relu_delta_f8(Py_ssize_t n, double *restrict g, const double *restrict z)
{
    RELU_DELTA_LOOP(double)
}


/* Batch normalization's passes over the columns [c0, c1) of "wide rows" (rows, width), C-contiguous:
 * every column's statistics are sums over all the rows, taken in row order, so a block of columns is a
 * whole piece of work and the bits do not depend on how the columns are split. Matrices m[0], m[1], ...
 * (rows, width) and vectors v[0], ... (width,) in the order of the Python arguments. Each sum starts at
 * 0, as NumPy's np.add.reduce starts at its identity. */
#define COLUMNS_FOR(body)                                                        \
    for (Py_ssize_t r = 0; r < rows; r++) {                                      \
        Py_ssize_t o = r * width;                                                \
        for (Py_ssize_t c = c0; c < c1; c++) {                                   \
            body                                                                 \
        }                                                                        \
    }
#define ZERO(vec) for (Py_ssize_t c = c0; c < c1; c++) vec[c] = 0;

/* out = sum over rows of x */
#define COLUMN_SUMS(T)                                                           \
    const T *restrict x = m[0];                                                  \
    T *restrict out = v[0];                                                      \
    ZERO(out)                                                                    \
    COLUMNS_FOR(out[c] = out[c] + x[o + c];)

/* xc = x - mu;  sq = sum over rows of xc^2 */
#define CENTRE(T)                                                                \
    const T *restrict x = m[0];                                                  \
    T *restrict xc = m[1];                                                       \
    const T *restrict mu = v[0];                                                 \
    T *restrict sq = v[1];                                                       \
    ZERO(sq)                                                                     \
    COLUMNS_FOR(T d = x[o + c] - mu[c]; xc[o + c] = d; T q = d * d; sq[c] = sq[c] + q;)

/* xhat <- xhat * scale;  z = xhat * gamma + beta */
#define NORMALIZE(T)                                                             \
    T *restrict xhat = m[0];                                                     \
    T *restrict z = m[1];                                                        \
    const T *restrict scale = v[0], *restrict gamma = v[1], *restrict beta = v[2]; \
    COLUMNS_FOR(T h = xhat[o + c] * scale[c]; xhat[o + c] = h; T p = h * gamma[c]; z[o + c] = p + beta[c];)

/* s = sum over rows of g;  sx = sum over rows of g * xhat */
#define GRAD_SUMS(T)                                                             \
    const T *restrict g = m[0], *restrict xhat = m[1];                           \
    T *restrict s = v[0], *restrict sx = v[1];                                   \
    ZERO(s)                                                                      \
    ZERO(sx)                                                                     \
    COLUMNS_FOR(T gi = g[o + c]; s[c] = s[c] + gi; T p = gi * xhat[o + c]; sx[c] = sx[c] + p;)

/* out = (g - ((xhat * mean_gx) + mean_g)) * scale */
#define INPUT_GRAD(T)                                                            \
    const T *restrict g = m[0], *restrict xhat = m[1];                           \
    const T *restrict mean_g = v[0], *restrict mean_gx = v[1], *restrict scale = v[2]; \
    T *restrict out = m[2];                                                      \
    COLUMNS_FOR(T t = xhat[o + c] * mean_gx[c]; t = t + mean_g[c]; t = g[o + c] - t; out[o + c] = t * scale[c];)

#define COLUMNS_KERNEL(name, BODY)                                               \
    CLONES static void name##_f4(Py_ssize_t rows, Py_ssize_t width, Py_ssize_t c0, Py_ssize_t c1, \
                                 void **m, void **v)                             \
    {                                                                            \
        BODY(float)                                                              \
    }                                                                            \
    CLONES static void name##_f8(Py_ssize_t rows, Py_ssize_t width, Py_ssize_t c0, Py_ssize_t c1, \
                                 void **m, void **v)                             \
    {                                                                            \
        BODY(double)                                                             \
    }

COLUMNS_KERNEL(column_sums, COLUMN_SUMS)
COLUMNS_KERNEL(centre, CENTRE)
COLUMNS_KERNEL(normalize, NORMALIZE)
COLUMNS_KERNEL(grad_sums, GRAD_SUMS)
COLUMNS_KERNEL(input_grad, INPUT_GRAD)

/* --- arguments --------------------------------------------------------------------------- */

/* A C-contiguous buffer of the object; 0 (and no error set) when it has none. */
static int get_buffer(PyObject *obj, Py_buffer *view, int writable)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0))) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* The buffers of args[0 .. n-1], n = strlen(writes), those marked 'w' in `writes` writable; how many
 * were got (n when all were: the first `got` must be released either way). */
static int get_buffers(PyObject *const *args, const char *writes, Py_buffer *b)
{
    int got = 0;
    for (; writes[got] != '\0'; got++)
        if (!get_buffer(args[got], &b[got], writes[got] == 'w'))
            break;
    return got;
}

/* The one-character struct format of the buffer's items (byte-order prefix "<", "=" or "@" allowed),
 * or 0. */
static char format_char(const Py_buffer *view)
{
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@')
        f++;
    return (f[0] != '\0' && f[1] == '\0') ? f[0] : 0;
}

/* 'f' for float32, 'd' for float64, 0 for anything else. */
static char float_kind(const Py_buffer *view)
{
    char c = format_char(view);
    if (c == 'f' && view->itemsize == 4)
        return 'f';
    if (c == 'd' && view->itemsize == 8)
        return 'd';
    return 0;
}

/* A signed 64-bit integer buffer (NumPy's int64 on every platform). */
static int is_int64(const Py_buffer *view)
{
    char c = format_char(view);
    return view->itemsize == 8 && (c == 'l' || c == 'q');
}

static int same_shape(const Py_buffer *a, const Py_buffer *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

static void release(Py_buffer *views, int n)
{
    for (int i = 0; i < n; i++)
        PyBuffer_Release(&views[i]);
}

/* --- the functions -------------------------------------------------------------------------- */

PyDoc_STRVAR(adam_doc,
             "adam(p, g, m, v, b1, c1, b2, c2, s, e) -> bool\n\n"
             "One Adam update in place over flat arrays of one float dtype:\n"
             "m <- b1 m + c1 g;  v <- b2 v + c2 g^2;  p <- p - (m / (sqrt(v) + e)) s.\n"
             "False (and nothing done) when the arrays are not for it.");

static PyObject *adam(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "adam takes 10 arguments");
        return NULL;
    }
    double k[6];
    for (int i = 0; i < 6; i++) {
        k[i] = PyFloat_AsDouble(args[4 + i]);
        if (k[i] == -1.0 && PyErr_Occurred())
            return NULL;
    }
    Py_buffer b[4];
    int got = get_buffers(args, "w-ww", b);
    int ok = got == 4;
    char kind = ok ? float_kind(&b[0]) : 0;
    for (int i = 1; ok && i < 4; i++)
        ok = float_kind(&b[i]) == kind && b[i].len == b[0].len;
    ok = ok && kind && b[0].ndim == 1;
    /* p, m and v must be apart (g may be anything: it is only read) */
    ok = ok && b[0].buf != b[2].buf && b[0].buf != b[3].buf && b[2].buf != b[3].buf;
    if (ok) {
        Py_ssize_t n = b[0].shape[0];
        PyThreadState *ts = n >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        if (kind == 'f')
            adam_f4(n, b[0].buf, b[1].buf, b[2].buf, b[3].buf, (float)k[0], (float)k[1], (float)k[2],
                    (float)k[3], (float)k[4], (float)k[5]);
        else
            adam_f8(n, b[0].buf, b[1].buf, b[2].buf, b[3].buf, k[0], k[1], k[2], k[3], k[4], k[5]);
        if (ts)
            PyEval_RestoreThread(ts);
    }
    release(b, got);
    return PyBool_FromLong(ok);
}

/* The float32 loops that write a from z (a may be z): f(rows, k, a, z), k the length of the last axis. */
typedef void (*rows_f4)(Py_ssize_t, Py_ssize_t, float *, const float *);

/* f(rows, k, a, z) for float32 z and a of one shape with a last axis of k > 0 values; False (nothing
 * done) when the arrays are not for it. */
static PyObject *float32_rows(PyObject *const *args, Py_ssize_t nargs, const char *name, rows_f4 f)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s takes 2 arguments", name);
        return NULL;
    }
    Py_buffer b[2];
    int got = get_buffers(args, "-w", b);
    int ok = got == 2 && float_kind(&b[0]) == 'f' && float_kind(&b[1]) == 'f' && same_shape(&b[0], &b[1]) &&
             b[0].ndim >= 1 && b[0].shape[b[0].ndim - 1] > 0;
    if (ok) {
        Py_ssize_t n = b[0].len / b[0].itemsize, k = b[0].shape[b[0].ndim - 1];
        PyThreadState *ts = n >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        f(n / k, k, b[1].buf, b[0].buf);
        if (ts)
            PyEval_RestoreThread(ts);
    }
    release(b, got);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(sigmoid_doc,
             "sigmoid(z, a) -> bool\n\n"
             "a = 1 / (1 + e^-z) for float32 z and a of one shape (a may be z), each step as\n"
             "numpynn._kernels.sigmoid32 takes it. False (and nothing done) when the arrays are not for it.");

static PyObject *sigmoid(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return float32_rows(args, nargs, "sigmoid", sigmoid_f4);
}

PyDoc_STRVAR(softmax_doc,
             "softmax(z, a) -> bool\n\n"
             "a = the softmax of z over its last axis, for float32 z and a of one shape (a may be z),\n"
             "each step as numpynn._kernels.softmax takes it. False (and nothing done) when the arrays\n"
             "are not for it.");

static PyObject *softmax(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return float32_rows(args, nargs, "softmax", softmax_f4);
}

PyDoc_STRVAR(sigmoid_delta_doc,
             "sigmoid_delta(g, a) -> bool\n\n"
             "g <- (g * a) * (1 - a) in place; g and a of one shape and float dtype.\n"
             "False (and nothing done) when the arrays are not for it.");

/* The loops that update g in place from another array of its shape: sigmoid_delta, relu_delta. */
typedef void (*pair_f4)(Py_ssize_t, float *, const float *);
typedef void (*pair_f8)(Py_ssize_t, double *, const double *);

/* g <- f(g, other) in place, g and other of one shape and float dtype; False (nothing done) when the
 * arrays are not for it. */
static PyObject *in_place_pair(PyObject *const *args, Py_ssize_t nargs, const char *name, pair_f4 f4, pair_f8 f8)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s takes 2 arguments", name);
        return NULL;
    }
    Py_buffer b[2];
    int got = get_buffers(args, "w-", b);
    int ok = got == 2;
    char kind = ok ? float_kind(&b[0]) : 0;
    ok = ok && kind && float_kind(&b[1]) == kind && same_shape(&b[0], &b[1]);
    if (ok) {
        Py_ssize_t n = b[0].len / b[0].itemsize;
        PyThreadState *ts = n >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        if (kind == 'f')
            f4(n, b[0].buf, b[1].buf);
        else
            f8(n, b[0].buf, b[1].buf);
        if (ts)
            PyEval_RestoreThread(ts);
    }
    release(b, got);
    return PyBool_FromLong(ok);
}

static PyObject *sigmoid_delta(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return in_place_pair(args, nargs, "sigmoid_delta", sigmoid_delta_f4, sigmoid_delta_f8);
}

PyDoc_STRVAR(relu_doc,
             "relu(z, a) -> bool\n\n"
             "a = max(z, 0) for z and a of one shape and float dtype (not the same array). False when\n"
             "the arrays are not for it (nothing done) or z holds a NaN (a is then to be written again).");

static PyObject *relu(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "relu takes 2 arguments");
        return NULL;
    }
    Py_buffer b[2];
    int got = get_buffers(args, "-w", b);
    int ok = got == 2;
    char kind = ok ? float_kind(&b[0]) : 0;
    ok = ok && kind && float_kind(&b[1]) == kind && same_shape(&b[0], &b[1]) && b[0].buf != b[1].buf;
    if (ok) {
        Py_ssize_t n = b[0].len / b[0].itemsize;
        PyThreadState *ts = n >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        int nan = kind == 'f' ? relu_f4(n, b[0].buf, b[1].buf) : relu_f8(n, b[0].buf, b[1].buf);
        if (ts)
            PyEval_RestoreThread(ts);
        ok = !nan;  /* np.maximum's NaN: the reference does it */
    }
    release(b, got);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(relu_delta_doc,
             "relu_delta(g, z) -> bool\n\n"
             "g <- g * (z > 0) in place; g and z of one shape and float dtype.\n"
             "False (and nothing done) when the arrays are not for it.");

static PyObject *relu_delta(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return in_place_pair(args, nargs, "relu_delta", relu_delta_f4, relu_delta_f8);
}

PyDoc_STRVAR(gather_scale_doc,
             "gather_scale(x, idx, scale, out) -> bool\n\n"
             "out[r] = x[idx[r]] * scale for the uint8 rows x (N, ...), int64 indices idx (n,) and\n"
             "float rows out (n, ...). False (and nothing done) when the arrays are not for it\n"
             "or an index is out of range.");

static PyObject *gather_scale(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "gather_scale takes 4 arguments");
        return NULL;
    }
    double scale = PyFloat_AsDouble(args[2]);
    if (scale == -1.0 && PyErr_Occurred())
        return NULL;
    Py_buffer b[3];
    PyObject *objs[3] = {args[0], args[1], args[3]};
    int got = get_buffers(objs, "--w", b);
    int ok = got == 3;
    char kind = ok ? float_kind(&b[2]) : 0;
    ok = ok && kind && b[0].itemsize == 1 && format_char(&b[0]) == 'B';
    ok = ok && b[1].ndim == 1 && is_int64(&b[1]);
    ok = ok && b[0].ndim >= 1 && b[2].ndim == b[0].ndim && b[2].shape[0] == b[1].shape[0];
    for (int i = 1; ok && i < b[0].ndim; i++)
        ok = b[0].shape[i] == b[2].shape[i];
    Py_ssize_t rows = 0, cols = 0, N = 0;
    if (ok) {
        rows = b[1].shape[0];
        N = b[0].shape[0];
        cols = N ? b[0].len / N : 0;
        const int64_t *idx = b[1].buf;
        for (Py_ssize_t r = 0; ok && r < rows; r++)
            ok = idx[r] >= 0 && idx[r] < N;
    }
    if (ok) {
        PyThreadState *ts = rows * cols >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        if (kind == 'f')
            gather_scale_f4(rows, cols, b[0].buf, b[1].buf, (float)scale, b[2].buf);
        else
            gather_scale_f8(rows, cols, b[0].buf, b[1].buf, scale, b[2].buf);
        if (ts)
            PyEval_RestoreThread(ts);
    }
    release(b, got);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(shift_scale_doc,
             "shift_scale(images, dy, dx, scale, out) -> bool\n\n"
             "out[i, y, x] = images[i, y - dy[i], x - dx[i]] * scale (0 where that is outside the image)\n"
             "for uint8 images (n, h, w), int64 shifts dy and dx (n,) and float out (n, h, w).\n"
             "False (and nothing done) when the arrays are not for it.");

static PyObject *shift_scale(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "shift_scale takes 5 arguments");
        return NULL;
    }
    double scale = PyFloat_AsDouble(args[3]);
    if (scale == -1.0 && PyErr_Occurred())
        return NULL;
    Py_buffer b[4];
    PyObject *objs[4] = {args[0], args[1], args[2], args[4]};
    int got = get_buffers(objs, "---w", b);
    int ok = got == 4;
    char kind = ok ? float_kind(&b[3]) : 0;
    ok = ok && kind && b[0].ndim == 3 && b[0].itemsize == 1 && format_char(&b[0]) == 'B';
    ok = ok && same_shape(&b[0], &b[3]) && is_int64(&b[1]) && is_int64(&b[2]);
    ok = ok && b[1].ndim == 1 && b[2].ndim == 1 && b[1].shape[0] == b[0].shape[0] && b[2].shape[0] == b[0].shape[0];
    if (ok) {
        Py_ssize_t n = b[0].shape[0], h = b[0].shape[1], w = b[0].shape[2];
        PyThreadState *ts = n * h * w >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        if (kind == 'f')
            shift_scale_f4(n, h, w, b[0].buf, b[1].buf, b[2].buf, (float)scale, b[3].buf);
        else
            shift_scale_f8(n, h, w, b[0].buf, b[1].buf, b[2].buf, scale, b[3].buf);
        if (ts)
            PyEval_RestoreThread(ts);
    }
    release(b, got);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(col2im_doc,
             "col2im(gc, out, sh, sw) -> bool\n\n"
             "out[n, sh i + u, sw j + v, c] += gc[n, i, j, u, v, c] for gc (n, Ho, Wo, kh, kw, C) and\n"
             "out (n, Hp, Wp, C) of one float dtype, the offsets (u, v) in row-major order.\n"
             "False (and nothing done) when the arrays are not for it.");

static PyObject *col2im(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "col2im takes 4 arguments");
        return NULL;
    }
    Py_ssize_t sh = PyLong_AsSsize_t(args[2]), sw = PyLong_AsSsize_t(args[3]);
    if ((sh == -1 || sw == -1) && PyErr_Occurred())
        return NULL;
    Py_buffer b[2];
    int got = get_buffers(args, "-w", b);
    int ok = got == 2;
    char kind = ok ? float_kind(&b[0]) : 0;
    ok = ok && kind && float_kind(&b[1]) == kind && b[0].ndim == 6 && b[1].ndim == 4 && sh >= 1 && sw >= 1;
    ok = ok && b[0].shape[0] == b[1].shape[0] && b[0].shape[5] == b[1].shape[3] && b[0].buf != b[1].buf;
    Py_ssize_t n = 0, Ho = 0, Wo = 0, kh = 0, kw = 0, C = 0, Hp = 0, Wp = 0;
    if (ok) {
        n = b[0].shape[0], Ho = b[0].shape[1], Wo = b[0].shape[2], kh = b[0].shape[3], kw = b[0].shape[4];
        C = b[0].shape[5], Hp = b[1].shape[1], Wp = b[1].shape[2];
        ok = Ho >= 1 && Wo >= 1 && (Ho - 1) * sh + kh <= Hp && (Wo - 1) * sw + kw <= Wp;
    }
    if (ok) {
        Py_ssize_t size = b[0].len / b[0].itemsize;
        PyThreadState *ts = size >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        if (kind == 'f')
            col2im_f4(n, Ho, Wo, kh, kw, C, Hp, Wp, sh, sw, b[0].buf, b[1].buf);
        else
            col2im_f8(n, Ho, Wo, kh, kw, C, Hp, Wp, sh, sw, b[0].buf, b[1].buf);
        if (ts)
            PyEval_RestoreThread(ts);
    }
    release(b, got);
    return PyBool_FromLong(ok);
}

/* The four whole numbers kh, kw, sh, sw; 0 with an error set when one is not. */
static int window_args(PyObject *const *args, Py_ssize_t *w)
{
    for (int i = 0; i < 4; i++) {
        w[i] = PyLong_AsSsize_t(args[i]);
        if (w[i] == -1 && PyErr_Occurred())
            return 0;
    }
    return 1;
}

/* off[k]: the offset of window element k = u kw + v from the window's corner in (H, W, C) memory. */
static void window_offsets(Py_ssize_t *off, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t W, Py_ssize_t C)
{
    for (Py_ssize_t k = 0; k < kh * kw; k++)
        off[k] = ((k / kw) * W + k % kw) * C;
}

/* x (n, H, W, C) and a pooled (n, Ho, Wo, C) of one float dtype whose windows fit x. */
static char pool_shapes(const Py_buffer *x, const Py_buffer *y, const Py_ssize_t *w)
{
    char kind = float_kind(x);
    if (!kind || float_kind(y) != kind || x->ndim != 4 || y->ndim != 4 || x->buf == y->buf)
        return 0;
    if (x->shape[0] != y->shape[0] || x->shape[3] != y->shape[3] || y->shape[1] < 1 || y->shape[2] < 1)
        return 0;
    if (w[0] < 1 || w[1] < 1 || w[2] < 1 || w[3] < 1)
        return 0;
    if ((y->shape[1] - 1) * w[2] + w[0] > x->shape[1] || (y->shape[2] - 1) * w[3] + w[1] > x->shape[2])
        return 0;
    return kind;
}

/* What both max-pool functions take: the arrays (x first, the pooled one second; `writes` marks
 * the writable ones), then kh, kw, sh, sw. 0 with an error set when the call is wrong; else 1, with
 * *got the buffers got (to be released), *kind the float kind of x and the pooled array whose windows
 * fit (0: not for the C loops) and, for a kind, *p their shapes. */
static int pool_args(PyObject *const *args, Py_ssize_t nargs, const char *name, const char *writes,
                     Py_buffer *b, int *got, char *kind, Pool *p)
{
    int k = (int)strlen(writes);
    if (nargs != k + 4) {
        PyErr_Format(PyExc_TypeError, "%s takes %d arguments", name, k + 4);
        return 0;
    }
    Py_ssize_t w[4];
    if (!window_args(args + k, w))
        return 0;
    *got = get_buffers(args, writes, b);
    *kind = *got == k ? pool_shapes(&b[0], &b[1], w) : 0;
    p->kh = w[0], p->kw = w[1], p->sh = w[2], p->sw = w[3], p->K = w[0] * w[1];
    if (p->K > MAX_WINDOW)
        *kind = 0;
    if (*kind) {
        p->n = b[0].shape[0], p->H = b[0].shape[1], p->W = b[0].shape[2], p->C = b[0].shape[3];
        p->Ho = b[1].shape[1], p->Wo = b[1].shape[2];
        window_offsets(p->off, p->kh, p->kw, p->W, p->C);
    }
    return 1;
}

PyDoc_STRVAR(maxpool_doc,
             "maxpool(x, out, kh, kw, sh, sw) -> bool\n\n"
             "out[n, i, j, c] = max over (u, v) of x[n, sh i + u, sw j + v, c] for x (n, H, W, C) and\n"
             "out (n, Ho, Wo, C) of one float dtype. False when the arrays are not for it (nothing done) or\n"
             "x holds a NaN (out is then to be written again).");

static PyObject *maxpool(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer b[2];
    int got;
    char kind;
    Pool p;
    if (!pool_args(args, nargs, "maxpool", "-w", b, &got, &kind, &p))
        return NULL;
    if (kind) {
        PyThreadState *ts = b[0].len / b[0].itemsize >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        int nan = kind == 'f' ? maxpool_f4(&p, b[0].buf, b[1].buf) : maxpool_f8(&p, b[0].buf, b[1].buf);
        if (ts)
            PyEval_RestoreThread(ts);
        if (nan)  /* np.maximum's NaN: the reference does it */
            kind = 0;
    }
    release(b, got);
    return PyBool_FromLong(kind != 0);
}

PyDoc_STRVAR(maxpool_backward_doc,
             "maxpool_backward(x, m, g, dx, kh, kw, sh, sw) -> bool\n\n"
             "dx (n, H, W, C) = max pooling's dC/dx for windows that do not overlap (sh >= kh, sw >= kw):\n"
             "each window's g (n, Ho, Wo, C) to its first arg-max in x (where x equals m), g * 0 to its\n"
             "other elements; inputs in no window are left as they are. One float dtype. False (nothing\n"
             "done) when the arrays are not for it or the windows overlap.");

static PyObject *maxpool_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer b[4];
    int got;
    char kind;
    Pool p;
    if (!pool_args(args, nargs, "maxpool_backward", "---w", b, &got, &kind, &p))
        return NULL;
    kind = p.sh >= p.kh && p.sw >= p.kw ? kind : 0;
    for (int i = 2; kind && i < 4; i++) {  /* g like m, dx like x, dx apart from the others */
        const Py_buffer *like = i == 2 ? &b[1] : &b[0];
        if (float_kind(&b[i]) != kind || b[i].ndim != 4 || (i == 3 && (b[3].buf == b[0].buf ||
                                                                      b[3].buf == b[1].buf || b[3].buf == b[2].buf)))
            kind = 0;
        for (int d = 0; kind && d < 4; d++)
            kind = b[i].shape[d] == like->shape[d] ? kind : 0;
    }
    if (kind) {
        PyThreadState *ts = b[0].len / b[0].itemsize >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        if (kind == 'f')
            maxpool_backward_f4(&p, b[0].buf, b[1].buf, b[2].buf, b[3].buf);
        else
            maxpool_backward_f8(&p, b[0].buf, b[1].buf, b[2].buf, b[3].buf);
        if (ts)
            PyEval_RestoreThread(ts);
    }
    release(b, got);
    return PyBool_FromLong(kind != 0);
}

/* The batch-norm passes share one wrapper: `roles` names each array argument, 'M' a matrix (rows, width)
 * or 'v' a vector (width,), and `writes` marks those written ('w'); then come c0 and c1. All of one
 * float dtype, C-contiguous, apart from each other; False (nothing done) when they are not for it. */
typedef void (*columns_fn)(Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, void **, void **);

static PyObject *columns_call(PyObject *const *args, Py_ssize_t nargs, const char *name, const char *roles,
                              const char *writes, columns_fn f4, columns_fn f8)
{
    int k = (int)strlen(roles);
    if (nargs != k + 2) {
        PyErr_Format(PyExc_TypeError, "%s takes %d arguments", name, k + 2);
        return NULL;
    }
    Py_ssize_t c0 = PyLong_AsSsize_t(args[k]), c1 = PyLong_AsSsize_t(args[k + 1]);
    if ((c0 == -1 || c1 == -1) && PyErr_Occurred())
        return NULL;
    Py_buffer b[6];
    void *m[6], *v[6];
    int got = get_buffers(args, writes, b), nm = 0, nv = 0;
    int ok = got == k;
    char kind = ok ? float_kind(&b[0]) : 0;
    Py_ssize_t rows = 0, width = 0;
    for (int i = 0; ok && i < k; i++) {
        ok = float_kind(&b[i]) == kind && b[i].ndim == (roles[i] == 'M' ? 2 : 1);
        if (ok && roles[i] == 'M' && !nm) {
            rows = b[i].shape[0];
            width = b[i].shape[1];
        }
        if (ok && roles[i] == 'M') {
            ok = b[i].shape[0] == rows && b[i].shape[1] == width;
            m[nm++] = b[i].buf;
        } else if (ok) {
            v[nv++] = b[i].buf;
        }
        for (int j = 0; ok && j < i; j++)
            ok = b[i].buf != b[j].buf;
    }
    for (int i = 0; ok && i < k; i++)
        ok = roles[i] == 'M' || b[i].shape[0] == width;
    ok = ok && kind && 0 <= c0 && c0 <= c1 && c1 <= width;
    if (ok) {
        PyThreadState *ts = rows * (c1 - c0) >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        (kind == 'f' ? f4 : f8)(rows, width, c0, c1, m, v);
        if (ts)
            PyEval_RestoreThread(ts);
    }
    release(b, got);
    return PyBool_FromLong(ok);
}

#define COLUMNS_FUNCTION(name, roles, writes, doc)                                           \
    PyDoc_STRVAR(name##_doc, doc);                                                           \
    static PyObject *name(PyObject *self, PyObject *const *args, Py_ssize_t nargs)           \
    {                                                                                        \
        return columns_call(args, nargs, #name, roles, writes, name##_f4, name##_f8);        \
    }

COLUMNS_FUNCTION(column_sums, "Mv", "-w",
                 "column_sums(x, out, c0, c1) -> bool\n\nout[c] = sum over rows of x[r, c], c0 <= c < c1.")
COLUMNS_FUNCTION(centre, "MMvv", "-w-w",
                 "centre(x, xc, mu, sq, c0, c1) -> bool\n\nxc = x - mu; sq[c] = sum over rows of xc[r, c]^2.")
COLUMNS_FUNCTION(normalize, "MMvvv", "ww---",
                 "normalize(xhat, z, scale, gamma, beta, c0, c1) -> bool\n\n"
                 "xhat <- xhat * scale; z = xhat * gamma + beta.")
COLUMNS_FUNCTION(grad_sums, "MMvv", "--ww",
                 "grad_sums(g, xhat, s, sx, c0, c1) -> bool\n\ns = sum over rows of g; sx = of g * xhat.")
COLUMNS_FUNCTION(input_grad, "MMvvvM", "-----w",
                 "input_grad(g, xhat, mean_g, mean_gx, scale, out, c0, c1) -> bool\n\n"
                 "out = (g - (xhat * mean_gx + mean_g)) * scale.")

static PyMethodDef methods[] = {
    {"adam", (PyCFunction)(void (*)(void))adam, METH_FASTCALL, adam_doc},
    {"sigmoid", (PyCFunction)(void (*)(void))sigmoid, METH_FASTCALL, sigmoid_doc},
    {"softmax", (PyCFunction)(void (*)(void))softmax, METH_FASTCALL, softmax_doc},
    {"sigmoid_delta", (PyCFunction)(void (*)(void))sigmoid_delta, METH_FASTCALL, sigmoid_delta_doc},
    {"relu", (PyCFunction)(void (*)(void))relu, METH_FASTCALL, relu_doc},
    {"relu_delta", (PyCFunction)(void (*)(void))relu_delta, METH_FASTCALL, relu_delta_doc},
    {"gather_scale", (PyCFunction)(void (*)(void))gather_scale, METH_FASTCALL, gather_scale_doc},
    {"shift_scale", (PyCFunction)(void (*)(void))shift_scale, METH_FASTCALL, shift_scale_doc},
    {"col2im", (PyCFunction)(void (*)(void))col2im, METH_FASTCALL, col2im_doc},
    {"maxpool", (PyCFunction)(void (*)(void))maxpool, METH_FASTCALL, maxpool_doc},
    {"maxpool_backward", (PyCFunction)(void (*)(void))maxpool_backward, METH_FASTCALL, maxpool_backward_doc},
    {"column_sums", (PyCFunction)(void (*)(void))column_sums, METH_FASTCALL, column_sums_doc},
    {"centre", (PyCFunction)(void (*)(void))centre, METH_FASTCALL, centre_doc},
    {"normalize", (PyCFunction)(void (*)(void))normalize, METH_FASTCALL, normalize_doc},
    {"grad_sums", (PyCFunction)(void (*)(void))grad_sums, METH_FASTCALL, grad_sums_doc},
    {"input_grad", (PyCFunction)(void (*)(void))input_grad, METH_FASTCALL, input_grad_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "numpynn._fused",
    "The fused training kernels in C (see numpynn._kernels for the NumPy reference).", -1, methods,
};

PyMODINIT_FUNC PyInit__fused(void)
{
    return PyModule_Create(&module);
}
