/* model.h - the one architecture both halves of the example build: a
 * 784-128-10 MLP. Saving writes only values; the program that loads them
 * makes the same layers first, and tg_model_load checks every name, shape
 * and dtype against them. */
#ifndef EXAMPLES_MNIST_PREDICT_MODEL_H
#define EXAMPLES_MNIST_PREDICT_MODEL_H

#include <tapegrad/tapegrad.h>

/* NULL with the library's error on failure. */
static inline tg_model *mnist_mlp_model(int classes)
{
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(1, 28, 28), TG_SCHEME_KERAS, 1);
    tg_status s = m ? tg_model_add(m, tg_layer_flatten()) : tg_last_status();
    if (s == TG_OK)
        s = tg_model_add(m, tg_layer_dense(128, TG_ACT_RELU));
    if (s == TG_OK)
        s = tg_model_add(m, tg_layer_dense(classes, TG_ACT_SOFTMAX));
    if (s != TG_OK) {
        tg_model_free(m);
        return NULL;
    }
    return m;
}

#endif
