/* fuzz_gunzip.c - gzip (tg_gunzip) on arbitrary bytes: the contract as in
 * fuzz_inflate.c, and a differential check of the private path the IDX
 * loader uses for files (tg__gunzip_stream: a stream read through a window,
 * with the IDX header's size hook). Fed a few bytes a read through a small
 * window, with a hook that allows everything, it must give tg_gunzip's
 * status, message and bytes, but for a header longer than the window, which
 * it refuses by name; with a hook that allows k bytes it must fail with
 * TG_ERANGE when the output is longer than k. */
#include "fuzz_common.h"
#include "io/io_internal.h"

#define MAX_OUT ((size_t)1 << 22)
#define WINDOW 128

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

/* tg__gunzip_stream on data, the hook allowing *k bytes. */
static tg_status gunzip_streamed(const uint8_t *data, size_t size, size_t *k, uint8_t **out,
                                 size_t *out_len)
{
    piece_stream p = {.data = data, .len = size};
    p.s = (tg__instream){.read = read_pieces, .ctx = &p};
    return tg__gunzip_stream(&p.s, WINDOW, MAX_OUT, 20, allow, k, out, out_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg__alloc_set_max(FUZZ_MAX_ALLOC * 2);
    uint8_t sentinel, *out = &sentinel;
    size_t out_len = 777;
    tg_clear_error();
    tg_status st = tg_gunzip(data, size, &out, &out_len, MAX_OUT);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", st == TG_OK ? "" : tg_last_error());
    if (st != TG_OK) {
        fuzz_check_failure(st, "tg_gunzip");
        FUZZ_CHECK(out == &sentinel && out_len == 777, "outputs changed on failure");
    }
    uint8_t *got = NULL;
    size_t got_len = 0, k = SIZE_MAX;
    tg_status st2 = gunzip_streamed(data, size, &k, &got, &got_len);
    bool long_header = st2 == TG_EFORMAT && strstr(tg_last_error(), "longer than the 128 bytes");
    if (!long_header) {
        FUZZ_CHECK(st2 == st, "streamed: status %d, tg_gunzip %d", (int)st2, (int)st);
        if (st != TG_OK)
            FUZZ_CHECK(strcmp(tg_last_error(), msg) == 0 && got == NULL,
                       "streamed: \"%s\", tg_gunzip \"%s\"", tg_last_error(), msg);
        else
            FUZZ_CHECK(got_len == out_len && memcmp(got, out, out_len) == 0,
                       "streamed output differs: %zu vs %zu bytes", got_len, out_len);
    }
    if (st != TG_OK || long_header) {
        if (st == TG_OK)
            tg_buffer_free(out);
        return 0;
    }
    tg_buffer_free(got);
    // A hook that allows fewer bytes than the content: refused once it runs.
    // The hook runs only when the buffer grows past 4096 bytes, so small
    // outputs may pass; a large one must not.
    if (out_len > 8192 + 20 + 65535) {
        k = 20 + (size_t)data[size / 2];
        got = NULL;
        st2 = gunzip_streamed(data, size, &k, &got, &got_len);
        FUZZ_CHECK(st2 == TG_ERANGE, "hook allowed %zu of %zu bytes, status %d", k, out_len,
                   (int)st2);
    }
    tg_buffer_free(out);
    return 0;
}
