/* fuzz_idx.c - tg_idx_load on an arbitrary file (raw or gzip). The file is
 * written to a private scratch directory for each input. Checks: a failure
 * names tg_idx_load; a success has 1..4 dims whose product is the size, and
 * for a raw file the elements are exactly the bytes after the header. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg__alloc_set_max(FUZZ_MAX_ALLOC * 2);
    char path[512];
    fuzz_write("input.idx", data, size, path, sizeof path);
    tg_clear_error();
    tg_idx *idx = tg_idx_load(path);
    unlink(path);
    if (!idx) {
        fuzz_check_failure(tg_last_status(), "tg_idx_load");
        FUZZ_CHECK(strncmp(tg_last_error(), "tg_idx_load: ", 13) == 0, "message prefix");
        return 0;
    }
    int nd = tg_idx_ndim(idx);
    const int64_t *dims = tg_idx_dims(idx);
    FUZZ_CHECK(nd >= 1 && nd <= 4 && dims, "ndim %d", nd);
    uint64_t prod = 1, span = 1;
    for (int i = 0; i < nd; i++) {
        FUZZ_CHECK(dims[i] >= 0 && dims[i] <= 0xffffffffLL, "dim %d = %lld", i,
                   (long long)dims[i]);
        prod *= (uint64_t)dims[i];
        span *= dims[i] ? (uint64_t)dims[i] : 1; // the loader's rule keeps this small
        FUZZ_CHECK(span <= TG_IDX_MAX_BYTES, "span past the cap");
    }
    size_t n = tg_idx_size(idx);
    FUZZ_CHECK(prod == n, "size %zu, product %llu", n, (unsigned long long)prod);
    const uint8_t *el = tg_idx_data(idx);
    FUZZ_CHECK(el != NULL, "NULL data");
    bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!gz) {
        size_t hdr = 4 + 4 * (size_t)nd;
        FUZZ_CHECK(size == hdr + n && memcmp(el, data + hdr, n) == 0, "raw payload differs");
    } else {
        unsigned sum = 0; // touch every element (ASan checks the bounds)
        for (size_t i = 0; i < n; i++)
            sum += el[i];
        (void)sum;
    }
    tg_idx_free(idx);
    return 0;
}
