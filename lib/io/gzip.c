/* gzip.c - the gzip container (RFC 1952) around inflate.c's DEFLATE: member
 * headers, trailers (CRC-32 and size), concatenated members, from memory or
 * from a stream read through a window (tg__gunzip_stream: a dataset's .gz
 * is then never held whole beside what it decodes to). Both run the same
 * code over a tg__inbits, so they accept, refuse and word their errors
 * alike. */
#include <stdio.h>
#include <string.h>

#include "io/io_internal.h"
#include "tapegrad/io.h"

enum { FTEXT = 1, FHCRC = 2, FEXTRA = 4, FNAME = 8, FCOMMENT = 16 };

static uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Skips a zero-terminated header field starting at *pos. */
static tg_status skip_string(const char *fn, int member, const uint8_t *in, size_t len,
                             size_t *pos, const char *what, bool *short_input)
{
    const uint8_t *end = memchr(in + *pos, 0, len - *pos);
    if (!end) {
        *short_input = true;
        return tg__fail(TG_EFORMAT, "%s: member %d: truncated gzip header (unterminated %s)", fn,
                        member, what);
    }
    *pos = (size_t)(end - in) + 1;
    return TG_OK;
}

/* Parses a member header at in[0..len) and sets *hdr_len to its size;
 * *short_input tells that it failed for want of bytes. */
static tg_status gzip_header(const char *fn, const uint8_t *in, size_t len, int member,
                             size_t *hdr_len, bool *short_input)
{
    *short_input = false;
    if (len < 10) {
        *short_input = true;
        return tg__fail(TG_EFORMAT, "%s: member %d: truncated gzip header (%zu bytes)", fn,
                        member, len);
    }
    if (in[0] != 0x1f || in[1] != 0x8b)
        return tg__fail(TG_EFORMAT, "%s: member %d: not gzip data (magic 0x%02x 0x%02x, "
                        "expected 0x1f 0x8b)", fn, member, in[0], in[1]);
    if (in[2] != 8)
        return tg__fail(TG_EFORMAT, "%s: member %d: unsupported compression method %u "
                        "(only 8, deflate)", fn, member, in[2]);
    unsigned flags = in[3];
    if (flags & 0xe0)
        return tg__fail(TG_EFORMAT, "%s: member %d: reserved header flags set (0x%02x)", fn,
                        member, flags);
    size_t pos = 10;
    tg_status st = TG_OK;
    if (flags & FEXTRA) {
        if (len - pos < 2) {
            *short_input = true;
            return tg__fail(TG_EFORMAT, "%s: member %d: truncated gzip header (FEXTRA length)", fn,
                            member);
        }
        size_t xlen = in[pos] | (size_t)in[pos + 1] << 8;
        pos += 2;
        if (len - pos < xlen) {
            *short_input = true;
            return tg__fail(TG_EFORMAT, "%s: member %d: truncated gzip header (FEXTRA field)", fn,
                            member);
        }
        pos += xlen;
    }
    if (flags & FNAME)
        st = skip_string(fn, member, in, len, &pos, "file name", short_input);
    if (st == TG_OK && (flags & FCOMMENT))
        st = skip_string(fn, member, in, len, &pos, "comment", short_input);
    if (st != TG_OK)
        return st;
    if (flags & FHCRC) {
        // The header CRC is the low 16 bits of the CRC-32 of the bytes before it.
        if (len - pos < 2) {
            *short_input = true;
            return tg__fail(TG_EFORMAT, "%s: member %d: truncated gzip header (FHCRC)", fn,
                            member);
        }
        unsigned stored = in[pos] | (unsigned)in[pos + 1] << 8;
        unsigned computed = tg__crc32(0, in, pos) & 0xffffu;
        if (stored != computed)
            return tg__fail(TG_EFORMAT, "%s: member %d: header CRC mismatch (stored 0x%04x, "
                            "computed 0x%04x)", fn, member, stored, computed);
        pos += 2;
    }
    *hdr_len = pos;
    return TG_OK;
}

/* Decodes the member at b's position onto o, leaving b past its trailer. A
 * header is parsed in the window; from a stream the window is filled first,
 * so only a header longer than the window is refused for it. */
static tg_status gzip_member(const char *fn, tg__inbits *b, int member, tg__outbuf *o)
{
    size_t hdr = 0;
    bool short_input;
    tg__inbits_more(b, SIZE_MAX);
    tg_status st = gzip_header(fn, b->in + b->pos, b->len - b->pos, member, &hdr, &short_input);
    if (st != TG_OK && short_input && !b->ended)
        return tg__fail(TG_EFORMAT, "%s: member %d: gzip header longer than the %zu bytes a "
                        "streamed read holds", fn, member, b->cap);
    if (st != TG_OK)
        return st;
    b->pos += hdr;
    size_t start = o->len;
    // Name the member in DEFLATE errors too; their offsets count from its data.
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s: member %d", fn, member);
    st = tg__inflate_bits(prefix, b, o);
    if (st != TG_OK)
        return st;
    if (!tg__inbits_more(b, 8))
        return tg__fail(TG_EFORMAT, "%s: member %d: truncated gzip trailer (%zu of 8 bytes)",
                        fn, member, b->len - b->pos);
    uint32_t stored = load_le32(b->in + b->pos);
    uint32_t computed = tg__crc32(0, o->data + start, o->len - start);
    if (stored != computed)
        return tg__fail(TG_EFORMAT, "%s: member %d: CRC mismatch (stored 0x%08x, computed "
                        "0x%08x)", fn, member, (unsigned)stored, (unsigned)computed);
    uint32_t isize = load_le32(b->in + b->pos + 4);
    if (isize != (uint32_t)(o->len - start))
        return tg__fail(TG_EFORMAT, "%s: member %d: size mismatch (stored %u, decoded %zu "
                        "mod 2^32)", fn, member, (unsigned)isize, o->len - start);
    b->pos += 8;
    return TG_OK;
}

/* The bytes left in b, read to the end of a stream. */
static size_t bytes_left(tg__inbits *b)
{
    size_t n = 0;
    for (;;) {
        n += b->len - b->pos;
        b->pos = b->len;
        if (!tg__inbits_more(b, 1))
            return n;
    }
}

/* The members from b onto o (already initialised); hands the result over
 * or frees it. */
static tg_status gunzip_into(const char *fn, tg__inbits *b, tg__outbuf *o, tg_status st,
                             uint8_t **out, size_t *out_len)
{
    for (int member = 1; st == TG_OK && (member == 1 || tg__inbits_more(b, 1)); member++) {
        // gzip(1) warns about and ignores trailing garbage; a dataset loader
        // should not silently accept a damaged file, so it is an error here.
        if (member > 1 && (!tg__inbits_more(b, 2) || b->in[b->pos] != 0x1f ||
                           b->in[b->pos + 1] != 0x8b)) {
            st = tg__fail(TG_EFORMAT, "%s: %zu bytes of trailing data after member %d are "
                          "not a gzip member", fn, bytes_left(b), member - 1);
            break;
        }
        st = gzip_member(fn, b, member, o);
    }
    if (st != TG_OK) {
        tg__free(o->data);
        return st;
    }
    return tg__outbuf_finish(fn, o, out, out_len);
}

/* The trailer of the last member stores its size mod 2^32: a good hint for
 * the common single-member file, used only if plausible (DEFLATE cannot
 * expand more than 1032:1). */
static size_t gzip_size_hint(const uint8_t *in, size_t in_len, size_t max)
{
    size_t hint = in_len >= 18 ? load_le32(in + in_len - 4) : 0;
    if (hint == 0 || hint / 1032 > in_len)
        hint = tg__inflate_first_cap(in_len, max);
    return hint < max ? hint : max;
}

tg_status tg_gunzip(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
                    size_t max_out)
{
    static const char fn[] = "tg_gunzip";
    tg_status st = tg__decode_args(fn, in, out, out_len);
    if (st != TG_OK)
        return st;
    tg__outbuf o;
    st = tg__outbuf_init(fn, &o, gzip_size_hint(in, in_len, max_out ? max_out : SIZE_MAX),
                         max_out);
    tg__inbits b = {.in = in, .len = in_len, .ended = true};
    return gunzip_into(fn, &b, &o, st, out, out_len);
}

tg_status tg__gunzip_stream(tg__instream *in, size_t window_bytes, size_t max_out,
                            size_t limit_at, tg__out_limit_fn limit, void *ctx, uint8_t **out,
                            size_t *out_len)
{
    static const char fn[] = "tg_gunzip";
    tg_status st = tg__decode_args(fn, in, out, out_len);
    if (st != TG_OK)
        return st;
    if (window_bytes < 64)
        window_bytes = 64;
    uint8_t *window = tg__malloc(window_bytes);
    if (!window)
        return tg__fail(TG_ENOMEM, "%s: out of memory for a %zu-byte read window", fn,
                        window_bytes);
    tg__inbits b = {.in = window, .src = in, .window = window, .cap = window_bytes};
    // The output starts small: a trailer's size hint is exactly what a bomb
    // forges, and the limit hook gives the real cap.
    tg__outbuf o;
    st = tg__outbuf_init(fn, &o, limit_at > 4096 ? limit_at : 4096, max_out);
    o.limit = limit;
    o.limit_ctx = ctx;
    o.limit_at = limit_at;
    in->status = TG_OK;
    st = gunzip_into(fn, &b, &o, st, out, out_len);
    tg__free(window);
    if (in->status == TG_OK)
        return st;
    // The stream's own error (a read error, a file past its cap) is the
    // message: the decoder saw only its input end, perhaps after the last
    // member.
    if (st == TG_OK) {
        tg__free(*out);
        *out = NULL;
    }
    return tg__fail(in->status, "%s", in->msg);
}
