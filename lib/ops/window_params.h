/* window_params.h - the parameters of the sliding-window ops (conv.c,
 * pool.c), shared with the op that runs a convolution and the max pool after
 * it as one node (conv_pool.c), which keeps one of each and hands them to
 * those files' rules. Private to lib/ops. */
#ifndef TG_OPS_WINDOW_PARAMS_H
#define TG_OPS_WINDOW_PARAMS_H

#include "kernels/kernels.h"
#include "ops/ops_internal.h"

/* conv2d, conv2d_dx, conv2d_dw, conv2d_relu. */
typedef struct conv_params {
    int64_t stride_h, stride_w, dilation_h, dilation_w;
    int64_t pad_top, pad_bottom, pad_left, pad_right;
    int64_t out_shape[4]; /* conv2d_dx, conv2d_dw: the shape of the result */
} conv_params;

/* max_pool2d, avg_pool2d, avg_pool2d_grad. */
typedef struct pool_params {
    int64_t kernel_h, kernel_w, stride_h, stride_w;
    int64_t pad_top, pad_bottom, pad_left, pad_right;
    bool count_include_pad;
    int64_t in_shape[4];   /* the input's shape (the adjoint's result) */
    const int64_t *argmax; /* max_pool2d: found when a rule first needs it */
} pool_params;

/* The checked parameters of a convolution of an H x W image with a KH x KW
 * kernel (conv.c), and the kernels' geometry for x's and w's shapes. */
tg_status tg__conv_params_make(const char *fn, const tg_conv2d_geom *g, int64_t H, int64_t W,
                               int64_t KH, int64_t KW, conv_params *p);
tg__conv_geom tg__conv_kernel_geom(const conv_params *p, const int64_t *xs, const int64_t *ws);

/* The checked parameters of a pool over an input of (ndim, shape) (pool.c),
 * and the kernels' geometry (planes: every image's channels). */
tg_status tg__pool_params_make(const char *fn, int ndim, const int64_t *shape,
                               const tg_pool2d_geom *geom, pool_params *p);
tg__pool_geom tg__pool_kernel_geom(const pool_params *p);
/* TG_OK when every window of p holds an output (OH, OW >= 1), else TG_ESHAPE
 * recorded for fn: the pools' shape rule. */
tg_status tg__pool_fits(const char *fn, const pool_params *p);

#endif
