/* mnist_train_save - the first half of a save/load round trip: trains the
 * 784-128-10 MLP with tg_fit and writes it with tg_model_save (safetensors,
 * names like a PyTorch state_dict: dense.weight, dense.bias, ...). The
 * second half is mnist_predict. */
#include <stdio.h>

#include <tapegrad/tapegrad.h>

#include "../common/args.h"
#include "model.h"

int main(int argc, char **argv)
{
    example_args a = {.epochs = 3, .batch = 32, .lr = 1e-3, .seed = 1, .verbose = 1,
                      .patience = -1, .extras = EXAMPLE_MODEL_FILE,
                      .model_file = "mnist_mlp.safetensors"};
    int parsed = example_parse_args(argc, argv, "Trains an MLP and saves it (--model PATH).", &a);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;

    tg_dataset *ds = tg_mnist_load(a.data, TG_F32);
    tg_model *model = ds ? mnist_mlp_model(tg_dataset_num_classes(ds)) : NULL;
    tg_optim *opt = NULL;
    if (model) {
        int n;
        tg_tensor *const *params = tg_model_params(model, &n);
        tg_adam_opts o = tg_adam_defaults();
        o.lr = a.lr;
        opt = tg_optim_adam(params, n, &o);
    }
    tg_status s = opt ? TG_OK : tg_last_status();
    if (s == TG_OK) {
        tg_fit_opts fit = tg_fit_defaults();
        fit.epochs = a.epochs;
        fit.batch_size = a.batch;
        fit.seed = a.seed;
        fit.verbose = a.verbose;
        fit.validation_split = a.validation_split;
        tg_data train = {.dataset = ds, .split = TG_SPLIT_TRAIN,
                         .labels = tg_dataset_labels(ds, TG_SPLIT_TRAIN)};
        s = tg_fit(model, opt, &train, &fit, NULL);
    }
    if (s == TG_OK)
        s = tg_model_save(model, a.model_file);
    if (s == TG_OK)
        printf("Saved %lld parameters to %s\n", (long long)tg_model_param_count(model),
               a.model_file);
    else
        fprintf(stderr, "error: %s\n", tg_last_error());
    tg_optim_free(opt);
    tg_model_free(model);
    tg_dataset_free(ds);
    return s == TG_OK ? 0 : 1;
}
