/* checkpoint.h - safetensors files, model checkpoints and resumable training.
 *
 * The format is Hugging Face's safetensors (what PyTorch, numpy tooling and
 * the `safetensors` package read): 8 bytes of little-endian header length N,
 * N bytes of JSON mapping each tensor name to {"dtype", "shape",
 * "data_offsets": [begin, end]} plus an optional "__metadata__" object of
 * strings, then the raw little-endian data, offsets counted from its start.
 * See docs/checkpoints.md for the names tapegrad writes and for loading them
 * in numpy and torch.
 *
 * Writing is atomic: the file is written to a temporary file in the same
 * directory, fsync'd and renamed over path (and the directory fsync'd), so a
 * failure, a crash or a kill leaves the previous file as it was. Files
 * tapegrad writes carry a CRC-32 of the data section in __metadata__
 * ("tapegrad.crc32"), checked on every read.
 *
 * Reading never trusts the file: every length, offset, shape and string is
 * checked before it is used, and no allocation is larger than the file
 * (plus at most 8 bytes per header byte for the parsed JSON). A damaged file
 * gives TG_EFORMAT with a message that names the file and the problem.
 *
 *     const char *names[] = {"w", "b"};
 *     tg_tensor *ts[] = {w, b};
 *     const char *meta[] = {"epoch", "3", NULL};   // key, value, ..., NULL
 *     tg_safetensors_write("out.safetensors", 2, names, ts, meta);
 *
 *     tg_safetensors *f = tg_safetensors_read("out.safetensors");
 *     tg_tensor *w2 = tg_safetensors_find(f, "w");  // borrowed from f
 *     tg_safetensors_free(f);
 */
#ifndef TAPEGRAD_CHECKPOINT_H
#define TAPEGRAD_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "io.h"
#include "nn.h"
#include "optim.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- safetensors files ---------------------------------------------------- */

/* Writes tensors[0..n) under names[0..n) (n >= 0) with the metadata pairs
 * metadata[0], metadata[1], ... up to a NULL key (metadata itself may be
 * NULL). Tensors are written in the order given, F32 or F64 by their dtype,
 * in row-major order; the header is padded with spaces to a multiple of 8
 * bytes. Names and metadata must be valid UTF-8, names non-empty, unique and
 * not "__metadata__"; metadata keys unique and not "tapegrad.crc32", which
 * tapegrad adds itself. Errors (path untouched): TG_EINVAL (NULL path, names
 * or tensors with n > 0, a NULL entry, n < 0, a bad or duplicate name or
 * key), TG_EIO (creating, writing, syncing or renaming failed; the message
 * names the step), TG_ENOMEM. */
TG_API tg_status tg_safetensors_write(const char *path, int n, const char *const *names,
                                      tg_tensor *const *tensors, const char *const *metadata);

typedef struct tg_safetensors tg_safetensors;

/* Reads a whole file. Tensors of dtype F32 and F64 become caller-side float32
 * and float64 tensors; any other dtype safetensors defines (F16, BF16, I64,
 * U8, BOOL, ...) is refused with TG_EDTYPE naming the tensor (tapegrad
 * computes in float32/float64 only), a dtype string safetensors does not
 * define with TG_EFORMAT. Returns an owned handle (tg_safetensors_free), or
 * NULL: TG_EINVAL (NULL path), TG_EIO (cannot open or read), TG_EFORMAT
 * (shorter than 8 bytes, header length beyond the file or above 100 MB,
 * header not a JSON object, a JSON error, an entry without dtype, shape or
 * data_offsets or with other keys, a negative or non-integer dimension,
 * more than 8 dimensions, a shape whose byte size overflows, offsets that
 * disagree with the shape, overlap, leave a gap or run past the end, a
 * duplicate name, non-string metadata, a CRC-32 that does not match the
 * data), TG_EDTYPE, TG_ENOMEM. */
TG_API tg_safetensors *tg_safetensors_read(const char *path);
/* NULL is ignored. */
TG_API void tg_safetensors_free(tg_safetensors *f);

/* Number of tensors (0 for NULL). They are numbered in data order (the
 * order of their data_offsets, which is the order tg_safetensors_write was
 * given). */
TG_API int tg_safetensors_count(const tg_safetensors *f);
/* Name of tensor i; borrowed (valid until tg_safetensors_free). NULL with
 * TG_EINVAL (NULL f) or TG_ERANGE (i out of range). */
TG_API const char *tg_safetensors_name(const tg_safetensors *f, int i);
/* Tensor i; borrowed: owned by f and freed by tg_safetensors_free (clone it
 * to keep it). Writable. NULL with TG_EINVAL or TG_ERANGE as above. */
TG_API tg_tensor *tg_safetensors_tensor(const tg_safetensors *f, int i);
/* The tensor named name (borrowed as above), or NULL: TG_EINVAL (NULL f or
 * name), TG_ERANGE when there is none ("tg_safetensors_find: no tensor
 * \"x\" in path"). */
TG_API tg_tensor *tg_safetensors_find(const tg_safetensors *f, const char *name);
/* The metadata value for key, borrowed; NULL when there is none (no error
 * is recorded for a missing key; TG_EINVAL for NULL arguments). */
TG_API const char *tg_safetensors_metadata(const tg_safetensors *f, const char *key);
/* Number of metadata pairs, and pair i's key and value (borrowed; NULL with
 * TG_ERANGE when i is out of range). */
TG_API int tg_safetensors_metadata_count(const tg_safetensors *f);
TG_API const char *tg_safetensors_metadata_key(const tg_safetensors *f, int i);
TG_API const char *tg_safetensors_metadata_value(const tg_safetensors *f, int i);

/* ---- model checkpoints ------------------------------------------------------
 * Parameters are named like a PyTorch state_dict: "<layer name>.weight" and
 * "<layer name>.bias" ("conv2d.weight", "dense_1.bias", ...), with the names
 * tg_layer_name and tg_layer_param_name give; a layer's buffers follow its
 * parameters ("batch_norm2d.running_mean") and are loaded back the same way.
 * Tensors are in tapegrad's own layout and dtype:
 *   Dense   weight (in, units)         torch.nn.Linear wants weight.T (units, in)
 *   Conv2D  weight (OC, C, KH, KW)     the same as torch.nn.Conv2d
 *   biases  (units) / (OC)             the same
 * Flatten on NCHW maps flattens C, H, W like torch.nn.Flatten.
 * __metadata__ holds "tapegrad.kind": "model", "tapegrad.dtype" and
 * "tapegrad.layers" ("conv2d:Conv2D,max_pooling2d:MaxPooling2D,..."). */

/* Writes the model's parameters to path. Errors: TG_EINVAL (NULL model or
 * path, a model without parameters), and those of tg_safetensors_write. */
TG_API tg_status tg_model_save(const tg_model *model, const char *path);

/* Loads parameters saved by tg_model_save (or any safetensors file with the
 * same names), or the model part of a training checkpoint (its "model."
 * tensors), into model, which must have the same architecture. Every
 * parameter must be in the file with the model's dtype and shape, and the
 * file must hold nothing else; the message names the first difference and
 * counts the others, e.g. "tg_model_load: m.safetensors: 'dense.weight' is
 * 784x10 in the file but 784x128 in the model (and 1 more difference)".
 * On any failure the model is untouched. Errors: TG_EINVAL (NULL), TG_ESHAPE,
 * TG_EDTYPE, TG_EFORMAT (a missing or extra tensor, or any
 * tg_safetensors_read error), TG_EIO, TG_ENOMEM. */
TG_API tg_status tg_model_load(tg_model *model, const char *path);

/* ---- resumable training -----------------------------------------------------
 * A training checkpoint holds everything that decides how training goes on:
 * the model's parameters, its generator (dropout) and training flag; the
 * optimizer's state tensors, step count, lr, hyperparameters and schedule;
 * the batcher's position in its epoch and its generator; a generator of the
 * caller's; and the caller's epoch counter. Loading it into freshly made
 * objects of the same configuration (in another process, say) and going on
 * gives the same numbers, bit for bit, as never having stopped. */
typedef struct tg_train_state {
    tg_model *model;      /* required */
    tg_optim *optim;      /* NULL: no optimizer state is saved or loaded */
    tg_batcher *batcher;  /* NULL: none */
    tg_rng *rng;          /* a generator of the caller's (augmentation, ...); NULL: none */
    int64_t epoch;        /* the caller's counter, saved and restored */
} tg_train_state;

/* Writes a training checkpoint. Tensor names: "model.<layer>.weight" ...,
 * "optim.<i>.<state>" for optimizer parameter i ("optim.0.exp_avg",
 * "optim.0.step"), "optim.lr", "optim.hparam.<name>" (0-dim float64); the
 * integers and generator states are in __metadata__ (docs/checkpoints.md
 * lists every key). Errors: TG_EINVAL (NULL state, path or model), and those
 * of tg_safetensors_write (messages prefixed with "tg_checkpoint_save: "). */
TG_API tg_status tg_checkpoint_save(const char *path, const tg_train_state *state);

/* Restores a checkpoint into the objects of state, which must match what
 * was saved: the same model architecture, the same optimizer algorithm with
 * the same state buffers over parameters of the same shapes, a schedule
 * attached exactly when one was saved (its values are restored), a batcher over
 * as many samples with the same batch size and shuffle flag, and the same
 * set of optional parts (an optimizer, a batcher and an rng must be given
 * exactly when the file has them). Everything is checked before anything
 * changes: on failure nothing is modified. Errors: TG_EINVAL (NULL),
 * TG_ESHAPE / TG_EDTYPE / TG_EFORMAT (what differs, named), TG_EIO,
 * TG_ENOMEM. */
TG_API tg_status tg_checkpoint_load(const char *path, tg_train_state *state);

/* (The model's generator is reached with tg_model_rng, in nn.h.) */

/* ---- batcher position ------------------------------------------------------
 * Where a tg_batcher is: its configuration, which is checked on restore, the
 * next sample's index in the epoch's order, and the generator state from
 * which the current epoch's order was drawn (the order is redrawn from it on
 * restore, so the order array need not be saved). */
typedef struct tg_batcher_state {
    int64_t n, batch_size; /* as the batcher was made */
    bool shuffle;
    int64_t pos;           /* samples of this epoch already handed out, 0..n */
    tg_rng epoch_rng;      /* the generator before this epoch's shuffle */
} tg_batcher_state;

/* Fills *out. TG_EINVAL for NULL arguments. */
TG_API tg_status tg_batcher_get_state(const tg_batcher *b, tg_batcher_state *out);
/* Restores a state from a batcher of the same n, batch_size and shuffle
 * flag: the epoch's order is redrawn from epoch_rng and the next batch starts
 * at pos. TG_EINVAL for NULL, TG_ESTATE when the configuration differs or
 * pos is outside 0..n (the batcher is unchanged). */
TG_API tg_status tg_batcher_set_state(tg_batcher *b, const tg_batcher_state *state);

#ifdef __cplusplus
}
#endif
#endif
