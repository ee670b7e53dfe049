/* mnist_predict - the second half: builds the same MLP, loads the values
 * mnist_train_save wrote (tg_model_load checks every name, shape and dtype),
 * and classifies the test digits with tg_predict: the first ten with their
 * probabilities, then the accuracy over all of them. */
#include <stdio.h>

#include <tapegrad/tapegrad.h>

#include "../common/args.h"
#include "model.h"

int main(int argc, char **argv)
{
    example_args a = {.epochs = 1, .batch = 256, .seed = 1, .patience = -1,
                      .extras = EXAMPLE_MODEL_FILE, .model_file = "mnist_mlp.safetensors"};
    int parsed = example_parse_args(argc, argv, "Loads a saved MLP (--model PATH) and predicts.",
                                    &a);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;

    tg_dataset *ds = tg_mnist_load(a.data, TG_F32);
    tg_model *model = ds ? mnist_mlp_model(tg_dataset_num_classes(ds)) : NULL;
    tg_status s = model ? tg_model_load(model, a.model_file) : tg_last_status();
    tg_tensor *images = tg_dataset_images(ds, TG_SPLIT_TEST);
    const int64_t *labels = tg_dataset_labels(ds, TG_SPLIT_TEST);
    int64_t n = tg_dataset_count(ds, TG_SPLIT_TEST);
    tg_tensor *probs = NULL;
    if (s == TG_OK)
        s = tg_predict(model, images, a.batch, &probs);
    if (s != TG_OK) {
        fprintf(stderr, "error: %s\n", tg_last_error());
        tg_model_free(model);
        tg_dataset_free(ds);
        return 1;
    }
    printf("Loaded %s\n", a.model_file);
    const float *p = tg_tensor_data(probs);
    int64_t k = tg_tensor_dim(probs, 1);
    for (int64_t i = 0; i < 10 && i < n; i++) {
        int64_t best = 0;
        for (int64_t j = 1; j < k; j++)
            if (p[i * k + j] > p[i * k + best])
                best = j;
        printf("test digit %lld: label %lld, predicted %lld (p = %.3f)\n", (long long)i,
               (long long)labels[i], (long long)best, p[i * k + best]);
    }
    printf("Test accuracy: %.4f (%lld digits)\n", tg_accuracy(probs, labels, n), (long long)n);
    tg_tensor_free(probs);
    tg_model_free(model);
    tg_dataset_free(ds);
    return 0;
}
