/* fuzz_inflate.c - raw DEFLATE (tg_inflate) on arbitrary bytes. Beyond "no
 * crash, no sanitizer report", it checks the contract: failure leaves the
 * outputs untouched and names tg_inflate; success decodes the same bytes
 * again with max_out set to exactly that size, and fails with TG_ERANGE one
 * byte below it. */
#include "fuzz_common.h"

#define MAX_OUT ((size_t)1 << 22)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg__alloc_set_max(FUZZ_MAX_ALLOC * 2);
    uint8_t sentinel, *out = &sentinel;
    size_t out_len = 12345;
    tg_clear_error();
    tg_status st = tg_inflate(data, size, &out, &out_len, MAX_OUT);
    if (st != TG_OK) {
        fuzz_check_failure(st, "tg_inflate");
        FUZZ_CHECK(out == &sentinel && out_len == 12345, "outputs changed on failure");
        FUZZ_CHECK(strncmp(tg_last_error(), "tg_inflate", 10) == 0, "message prefix");
        return 0;
    }
    FUZZ_CHECK(out && out_len <= MAX_OUT, "bad output %p %zu", (void *)out, out_len);
    uint8_t *again = NULL;
    size_t again_len = 0;
    if (out_len > 0) {
        st = tg_inflate(data, size, &again, &again_len, out_len);
        FUZZ_CHECK(st == TG_OK && again_len == out_len && memcmp(again, out, out_len) == 0,
                   "exact max_out %zu: status %d, %zu bytes", out_len, (int)st, again_len);
        tg_buffer_free(again);
        if (out_len > 1) { // max_out 0 means "no cap", so 1 byte has no "below"
            st = tg_inflate(data, size, &again, &again_len, out_len - 1);
            FUZZ_CHECK(st == TG_ERANGE, "max_out %zu for %zu bytes gave %d", out_len - 1,
                       out_len, (int)st);
        }
    }
    tg_buffer_free(out);
    return 0;
}
