/* fuzz_safetensors.c - libFuzzer harness for the safetensors reader (and,
 * through the header, the strict JSON parser). The input is written to a
 * file and read back with tg_safetensors_read, which must return a handle or
 * a clean error: never crash, leak or allocate beyond the file's size. A file
 * that loads is walked and written back, and the copy must load too.
 * Seeds: tools/fuzz/corpus/safetensors/. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tapegrad/tapegrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *scratch(const char *what)
{
    static char path[2][512];
    int k = what[0] == 'o';
    const char *dir = getenv("TMPDIR");
    snprintf(path[k], sizeof path[k], "%s/fuzz_safetensors-%ld.%s", dir ? dir : "/tmp",
             (long)getpid(), what);
    return path[k];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = scratch("in");
    FILE *f = fopen(in, "wb");
    if (!f)
        return 0;
    if (size && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    tg_safetensors *st = tg_safetensors_read(in);
    if (st) {
        int n = tg_safetensors_count(st);
        const char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
        tg_tensor **ts = malloc((size_t)(n ? n : 1) * sizeof *ts);
        if (names && ts) {
            for (int i = 0; i < n; i++) {
                names[i] = tg_safetensors_name(st, i);
                ts[i] = tg_safetensors_tensor(st, i);
                if (tg_safetensors_find(st, names[i]) != ts[i])
                    abort(); // lookup by name must find what the index gives
            }
            // Metadata is not copied: the reader's values may hold the CRC key.
            const char *out = scratch("out");
            if (tg_safetensors_write(out, n, names, ts, NULL) == TG_OK) {
                tg_safetensors *again = tg_safetensors_read(out);
                if (!again || tg_safetensors_count(again) != n)
                    abort(); // what tapegrad writes, tapegrad reads
                tg_safetensors_free(again);
            }
            unlink(out);
        }
        free(names);
        free(ts);
        tg_safetensors_free(st);
    }
    unlink(in);
    return 0;
}
