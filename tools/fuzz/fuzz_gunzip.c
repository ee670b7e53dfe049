/* fuzz_gunzip.c - gzip (tg_gunzip) on arbitrary bytes: the contract as in
 * fuzz_inflate.c, and a differential check of the private size-hook path
 * the IDX loader uses (tg__gunzip_limited): with a hook that allows
 * everything it must agree with tg_gunzip byte for byte; with a hook that
 * allows k bytes it must fail with TG_ERANGE exactly when the output is
 * longer than k. The streamed decoder (tg__gunzip_stream, the IDX loader's
 * for files), fed a few bytes a read through a small window, must give
 * tg_gunzip's status, message and bytes, but for a header longer than the
 * window, which it refuses by name. */
#include "fuzz_common.h"
#include "io/io_internal.h"

#define MAX_OUT ((size_t)1 << 22)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t allow(void *ctx, const uint8_t *d, size_t len)
{
    (void)d;
    size_t k = *(const size_t *)ctx;
    FUZZ_CHECK(len >= 20, "hook called with %zu bytes, fewer than limit_at", len);
    return k;
}

/* data as a stream of reads of 1 to 8 bytes (the sizes from the data). */
typedef struct piece_stream {
    tg__instream s;
    const uint8_t *data;
    size_t len, pos;
} piece_stream;

static size_t read_pieces(tg__instream *s, uint8_t *dst, size_t n)
{
    piece_stream *p = s->ctx;
    size_t k = p->len - p->pos, want = 1 + (p->len ? p->data[p->pos % p->len] % 8 : 0);
    k = k < want ? k : want;
    k = k < n ? k : n;
    memcpy(dst, p->data + p->pos, k);
    p->pos += k;
    return k;
}

static void check_streamed(const uint8_t *data, size_t size, tg_status st, const uint8_t *out,
                           size_t out_len)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", st == TG_OK ? "" : tg_last_error());
    piece_stream p = {.data = data, .len = size};
    p.s = (tg__instream){.read = read_pieces, .ctx = &p};
    uint8_t *got = NULL;
    size_t got_len = 0;
    tg_status st3 = tg__gunzip_stream(&p.s, 128, MAX_OUT, 0, NULL, NULL, &got, &got_len);
    if (st3 == TG_EFORMAT && strstr(tg_last_error(), "longer than the 128 bytes"))
        return;
    FUZZ_CHECK(st3 == st, "streamed: status %d, tg_gunzip %d", (int)st3, (int)st);
    if (st != TG_OK) {
        FUZZ_CHECK(strcmp(tg_last_error(), msg) == 0, "streamed: \"%s\", tg_gunzip \"%s\"",
                   tg_last_error(), msg);
        FUZZ_CHECK(got == NULL, "streamed: output on failure");
        return;
    }
    FUZZ_CHECK(got_len == out_len && memcmp(got, out, out_len) == 0,
               "streamed output differs: %zu vs %zu bytes", got_len, out_len);
    tg_buffer_free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg__alloc_set_max(FUZZ_MAX_ALLOC * 2);
    uint8_t sentinel, *out = &sentinel;
    size_t out_len = 777;
    tg_clear_error();
    tg_status st = tg_gunzip(data, size, &out, &out_len, MAX_OUT);
    uint8_t *lim = NULL;
    size_t lim_len = 0, k = SIZE_MAX;
    tg_status st2 = tg__gunzip_limited(data, size, MAX_OUT, 20, allow, &k, &lim, &lim_len);
    if (st != TG_OK) {
        fuzz_check_failure(st, "tg_gunzip");
        FUZZ_CHECK(out == &sentinel && out_len == 777, "outputs changed on failure");
        FUZZ_CHECK(st2 == st, "limited path: status %d, tg_gunzip %d", (int)st2, (int)st);
        tg_gunzip(data, size, &out, &out_len, MAX_OUT); // its message again
        check_streamed(data, size, st, NULL, 0);
        return 0;
    }
    check_streamed(data, size, st, out, out_len);
    FUZZ_CHECK(st2 == TG_OK && lim_len == out_len && memcmp(lim, out, out_len) == 0,
               "limited path differs: status %d, %zu vs %zu bytes", (int)st2, lim_len, out_len);
    tg_buffer_free(lim);
    // A hook that allows fewer bytes than the content: refused once it runs.
    // The hook runs only when the buffer grows past 4096 bytes, so small
    // outputs may pass; a large one must not.
    if (out_len > 8192 + 20 + 65535) {
        k = 20 + (size_t)data[size / 2];
        lim = NULL;
        st2 = tg__gunzip_limited(data, size, MAX_OUT, 20, allow, &k, &lim, &lim_len);
        FUZZ_CHECK(st2 == TG_ERANGE, "hook allowed %zu of %zu bytes, status %d", k, out_len,
                   (int)st2);
    }
    tg_buffer_free(out);
    return 0;
}
