/* inflate.c - a DEFLATE decoder (RFC 1951) and a gzip reader (RFC 1952), so
 * that datasets shipped as .gz can be read without zlib.
 *
 * Decoding is table driven: each Huffman code gets a FAST_BITS-wide lookup
 * table indexed by the next input bits, and the rare longer codes fall back to
 * a canonical walk (as in Mark Adler's puff.c). Every read is bounds checked;
 * corrupt input yields TG_EFORMAT, never a read outside `in`. File reading and
 * IDX parsing live in idx.c. */
#include <stdio.h>
#include <string.h>

#include "io/io_internal.h"
#include "tapegrad/io.h"

#define MAX_BITS 15     /* longest code DEFLATE allows */
#define FAST_BITS 10    /* covers nearly all symbols of real streams */
#define MAX_LCODES 286  /* literal/length symbols a dynamic block may declare */
#define MAX_DCODES 30   /* distance symbols a dynamic block may declare */
#define FIX_LCODES 288  /* the fixed code also assigns the unused 286 and 287 */
#define FIX_DCODES 32   /* ... and the unused distances 30 and 31 */

/* ---- bit input --------------------------------------------------------- */

/* Bits are taken LSB first from b->in (tg__inbits, io_internal.h). `buf`
 * holds `cnt` valid bits; any bits above them are either zero or a copy of
 * the next input bytes, so peeking past `cnt` is harmless as long as a
 * decoded code is checked to fit within `cnt`. */
typedef tg__inbits bits;

/* Where the next byte is, counted from the current stream's first. */
static size_t at(const bits *b) { return b->base + b->pos - b->origin; }

bool tg__inbits_more(tg__inbits *b, size_t n)
{
    if (b->len - b->pos >= n || !b->src || b->ended)
        return b->len - b->pos >= n;
    // Keep the 8 bytes before pos: align_to_byte may hand up to 7 back.
    size_t keep = b->pos < 8 ? b->pos : 8, drop = b->pos - keep;
    memmove(b->window, b->window + drop, b->len - drop);
    b->base += drop;
    b->len -= drop;
    b->pos = keep;
    size_t fill = n < b->cap - b->pos ? n : b->cap - b->pos; // as much as the window holds
    while (b->len - b->pos < fill) {
        size_t got = b->src->read(b->src, b->window + b->len, b->cap - b->len);
        if (got == 0) {
            b->ended = true;
            break;
        }
        b->len += got;
    }
    return b->len - b->pos >= n;
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Tops the buffer up to at least 56 bits, or to whatever input is left. */
static inline void refill(bits *b)
{
    // A stream's window is topped up only off the fast path.
    if (b->len - b->pos >= 8 || (b->src && tg__inbits_more(b, 8))) {
        // Branch-free refill (F. Giesen, "Reading bits in far too many ways"):
        // the bytes above cnt that are loaded but not counted are loaded again,
        // at the same place, next time, so OR-ing them twice is harmless.
        b->buf |= load_le64(b->in + b->pos) << b->cnt;
        b->pos += (63 - b->cnt) >> 3;
        b->cnt |= 56;
        return;
    }
    while (b->cnt <= 56 && b->pos < b->len) {
        b->buf |= (uint64_t)b->in[b->pos++] << b->cnt;
        b->cnt += 8;
    }
}

/* Takes n (<= 32) bits into *v; false when the input ends first. */
static inline bool getbits(bits *b, unsigned n, unsigned *v)
{
    if (b->cnt < n) {
        refill(b);
        if (b->cnt < n)
            return false;
    }
    *v = (unsigned)(b->buf & ((1ull << n) - 1));
    b->buf >>= n;
    b->cnt -= n;
    return true;
}

/* Drops the bits left in the current byte and hands the whole bytes still in
 * the buffer back to the input, so byte-aligned data can be read directly. */
static void align_to_byte(bits *b)
{
    b->cnt -= b->cnt & 7;
    b->pos -= b->cnt >> 3;
    b->buf = 0;
    b->cnt = 0;
}

/* ---- Huffman tables ---------------------------------------------------- */

typedef struct huff {
    /* Indexed by the next FAST_BITS input bits: (symbol << 4) | length, or 0
     * when the code there is longer than FAST_BITS (or unassigned). */
    uint16_t fast[1 << FAST_BITS];
    uint16_t count[MAX_BITS + 1]; /* number of codes of each length */
    uint16_t symbol[FIX_LCODES];  /* symbols ordered by code (canonical) */
} huff;

enum { HUFF_OK = 0, HUFF_OVER = -1, HUFF_INCOMPLETE = -2 };

static unsigned reverse_bits(unsigned code, unsigned n)
{
    unsigned r = 0;
    for (unsigned i = 0; i < n; i++, code >>= 1)
        r = (r << 1) | (code & 1);
    return r;
}

/* Builds h from n code lengths. Returns HUFF_OK, HUFF_OVER (more codes than
 * the lengths allow: always an error) or HUFF_INCOMPLETE (unused bit
 * patterns; callers decide whether that is acceptable). The table is usable
 * in the incomplete case: unused patterns decode as invalid. */
static int huff_build(huff *h, const uint8_t *lens, unsigned n)
{
    uint16_t offs[MAX_BITS + 2];
    unsigned next[MAX_BITS + 1];

    memset(h->count, 0, sizeof h->count);
    for (unsigned s = 0; s < n; s++)
        h->count[lens[s]]++;
    int left = 1;
    for (unsigned len = 1; len <= MAX_BITS; len++) {
        left = (left << 1) - h->count[len];
        if (left < 0)
            return HUFF_OVER;
    }
    offs[1] = 0;
    unsigned code = 0;
    for (unsigned len = 1; len <= MAX_BITS; len++) {
        offs[len + 1] = (uint16_t)(offs[len] + h->count[len]);
        next[len] = code;
        code = (code + h->count[len]) << 1;
    }
    memset(h->fast, 0, sizeof h->fast);
    for (unsigned s = 0; s < n; s++) {
        unsigned len = lens[s];
        if (len == 0)
            continue;
        h->symbol[offs[len]++] = (uint16_t)s;
        if (len > FAST_BITS) {
            next[len]++;
            continue;
        }
        // The stream sends codes MSB first but we read LSB first: index the
        // table by the reversed code, once for every value of the bits after it.
        unsigned r = reverse_bits(next[len]++, len);
        for (unsigned i = r; i < (1u << FAST_BITS); i += 1u << len)
            h->fast[i] = (uint16_t)((s << 4) | len);
    }
    return left > 0 ? HUFF_INCOMPLETE : HUFF_OK;
}

enum { SYM_TRUNCATED = -1, SYM_INVALID = -2 };

/* Canonical decoding one bit at a time, for codes longer than FAST_BITS. */
static int decode_slow(bits *b, const huff *h)
{
    int code = 0, first = 0, index = 0;
    for (unsigned len = 1; len <= MAX_BITS; len++) {
        code |= (int)((b->buf >> (len - 1)) & 1);
        int count = h->count[len];
        if (code - first < count) {
            if (len > b->cnt)
                return SYM_TRUNCATED;
            b->buf >>= len;
            b->cnt -= len;
            return h->symbol[index + code - first];
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    // No code matched: an unassigned pattern of an incomplete code, or zeros
    // read past the end of the input.
    return b->cnt < MAX_BITS ? SYM_TRUNCATED : SYM_INVALID;
}

/* Next symbol, or SYM_TRUNCATED / SYM_INVALID. */
static inline int decode(bits *b, const huff *h)
{
    if (b->cnt < MAX_BITS)
        refill(b);
    unsigned e = h->fast[b->buf & ((1u << FAST_BITS) - 1)];
    unsigned len = e & 15;
    if (len == 0)
        return decode_slow(b, h);
    if (len > b->cnt)
        return SYM_TRUNCATED;
    b->buf >>= len;
    b->cnt -= len;
    return (int)(e >> 4);
}

/* ---- output ------------------------------------------------------------- */

/* Makes room for n more bytes, doubling so appends stay amortised O(1). */
static tg_status out_reserve(const char *fn, tg__outbuf *o, size_t n)
{
    if (n <= o->cap - o->len)
        return TG_OK;
    // The limit hook sits on this slow path only: growth is rare, literals are not.
    bool limited = false;
    if (o->limit && o->len >= o->limit_at) {
        size_t m = o->limit(o->limit_ctx, o->data, o->len);
        o->limit = NULL;
        if (m < o->len)
            m = o->len;
        if (m < o->max) {
            o->max = m;
            limited = true;
        }
    }
    if (n > o->max - o->len)
        return tg__fail(TG_ERANGE, "%s: output exceeds the limit of %zu bytes", fn, o->max);
    size_t need = o->len + n;
    // Once the container has said how large it is, grow to that in one step.
    size_t cap = limited || o->cap > o->max / 2 ? o->max : o->cap * 2;
    if (cap < need)
        cap = need < 4096 && o->max >= 4096 ? 4096 : need;
    uint8_t *p = tg__realloc(o->data, cap);
    if (!p)
        return tg__fail(TG_ENOMEM, "%s: out of memory for %zu output bytes", fn, cap);
    o->data = p;
    o->cap = cap;
    return TG_OK;
}

/* ---- blocks ------------------------------------------------------------- */

typedef struct inflater {
    const char *fn;
    bits in;
    tg__outbuf *out;
    huff lit;  /* literal/length code of the current block */
    huff dist; /* distance code of the current block */
} inflater;

static const uint16_t len_base[29] = {3,  4,  5,  6,  7,  8,  9,   10,  11,  13,
                                      15, 17, 19, 23, 27, 31, 35,  43,  51,  59,
                                      67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {
    1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
    193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static tg_status truncated(const inflater *z)
{
    return tg__fail(TG_EFORMAT, "%s: truncated deflate data (stream ends at deflate byte %zu)",
                    z->fn, z->in.base + z->in.len - z->in.origin);
}

static tg_status bad_symbol(const inflater *z, int sym, const char *what)
{
    if (sym == SYM_TRUNCATED)
        return truncated(z);
    return tg__fail(TG_EFORMAT, "%s: invalid %s code near deflate byte %zu", z->fn, what,
                    at(&z->in));
}

/* Block type 0: LEN, NLEN (its complement), then LEN raw bytes. From a
 * stream they are copied as the window holds them. */
static tg_status stored_block(inflater *z)
{
    bits *b = &z->in;
    align_to_byte(b);
    if (!tg__inbits_more(b, 4))
        return truncated(z);
    const uint8_t *p = b->in + b->pos;
    unsigned len = p[0] | (unsigned)p[1] << 8;
    unsigned nlen = p[2] | (unsigned)p[3] << 8;
    if (len != (~nlen & 0xffffu))
        return tg__fail(TG_EFORMAT, "%s: stored block length 0x%04x does not match its "
                        "complement 0x%04x (deflate byte %zu)", z->fn, len, nlen, at(b));
    b->pos += 4;
    if (!tg__inbits_more(b, len) && b->ended)
        return truncated(z);
    tg_status st = out_reserve(z->fn, z->out, len);
    if (st != TG_OK)
        return st;
    for (size_t left = len; left > 0;) {
        if (b->pos == b->len && !tg__inbits_more(b, 1))
            return truncated(z);
        size_t n = b->len - b->pos < left ? b->len - b->pos : left;
        memcpy(z->out->data + z->out->len, b->in + b->pos, n);
        z->out->len += n;
        b->pos += n;
        left -= n;
    }
    return TG_OK;
}

/* Copies `len` bytes from `dist` back; the regions overlap when dist < len,
 * which repeats the last dist bytes (run-length encoding), so copy forwards.
 * `room` is the space after dst: with 8 spare bytes, whole 8-byte words are
 * copied (past len, into space the next symbols overwrite), which beats a
 * memcpy call for the typical 3..20-byte match. */
static void copy_match(uint8_t *dst, size_t dist, size_t len, size_t room)
{
    const uint8_t *src = dst - dist;
    if (dist == 1) {
        memset(dst, src[0], len);
    } else if (dist >= 8 && room >= len + 8) {
        for (size_t i = 0; i < len; i += 8)
            memcpy(dst + i, src + i, 8); // src + i stays 8 bytes behind dst + i
    } else if (dist >= len) {
        memcpy(dst, src, len);
    } else {
        for (size_t i = 0; i < len; i++)
            dst[i] = src[i];
    }
}

/* Decodes a length symbol's extra bits and the distance that follows, then
 * copies the match. */
static tg_status do_match(inflater *z, int sym)
{
    unsigned extra, len, dist;
    if (sym >= 286)
        return tg__fail(TG_EFORMAT, "%s: invalid length symbol %d near deflate byte %zu",
                        z->fn, sym, at(&z->in));
    sym -= 257;
    if (!getbits(&z->in, len_extra[sym], &extra))
        return truncated(z);
    len = len_base[sym] + extra;
    int dsym = decode(&z->in, &z->dist);
    if (dsym < 0)
        return bad_symbol(z, dsym, "distance");
    if (dsym >= 30)
        return tg__fail(TG_EFORMAT, "%s: invalid distance symbol %d near deflate byte %zu",
                        z->fn, dsym, at(&z->in));
    if (!getbits(&z->in, dist_extra[dsym], &extra))
        return truncated(z);
    dist = dist_base[dsym] + extra;
    tg__outbuf *o = z->out;
    if (dist > o->len - o->base)
        return tg__fail(TG_EFORMAT, "%s: distance %u too far back (only %zu bytes output) "
                        "near deflate byte %zu", z->fn, dist, o->len - o->base, at(&z->in));
    tg_status st = out_reserve(z->fn, o, len);
    if (st != TG_OK)
        return st;
    copy_match(o->data + o->len, dist, len, o->cap - o->len);
    o->len += len;
    return TG_OK;
}

/* Decodes symbols with z->lit / z->dist until end-of-block (256). */
static tg_status codes(inflater *z)
{
    tg__outbuf *o = z->out;
    for (;;) {
        int sym = decode(&z->in, &z->lit);
        if (sym < 256) {
            if (sym < 0)
                return bad_symbol(z, sym, "literal/length");
            if (o->len == o->cap) {
                tg_status st = out_reserve(z->fn, o, 1);
                if (st != TG_OK)
                    return st;
            }
            o->data[o->len++] = (uint8_t)sym;
        } else if (sym == 256) {
            return TG_OK;
        } else {
            tg_status st = do_match(z, sym);
            if (st != TG_OK)
                return st;
        }
    }
}

/* Block type 1: the code fixed by RFC 1951 section 3.2.6. */
static tg_status fixed_block(inflater *z)
{
    uint8_t lens[FIX_LCODES];
    memset(lens, 8, 144);
    memset(lens + 144, 9, 256 - 144);
    memset(lens + 256, 7, 280 - 256);
    memset(lens + 280, 8, FIX_LCODES - 280);
    huff_build(&z->lit, lens, FIX_LCODES); // complete by construction
    memset(lens, 5, FIX_DCODES);
    huff_build(&z->dist, lens, FIX_DCODES);
    return codes(z);
}

/* Reads the HCLEN code-length code lengths (3 bits each, in the RFC's order)
 * and builds the code-length code in *h. */
static tg_status read_clen_code(inflater *z, huff *h, unsigned nclen)
{
    static const uint8_t order[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                      11, 4,  12, 3, 13, 2, 14, 1, 15};
    uint8_t lens[19] = {0};
    for (unsigned i = 0; i < nclen; i++) {
        unsigned v;
        if (!getbits(&z->in, 3, &v))
            return truncated(z);
        lens[order[i]] = (uint8_t)v;
    }
    // Unlike the other two codes, this one must be complete (as zlib requires).
    int err = huff_build(h, lens, 19);
    if (err != HUFF_OK)
        return tg__fail(TG_EFORMAT, "%s: %s code-length code in dynamic block header", z->fn,
                        err == HUFF_OVER ? "over-subscribed" : "incomplete");
    return TG_OK;
}

/* Decodes n literal/length + distance code lengths with the code-length code:
 * 0..15 are lengths, 16 repeats the previous one 3..6 times, 17 and 18 write
 * 3..10 and 11..138 zeros. Repeats may run from one table into the next. */
static tg_status read_lengths(inflater *z, const huff *h, uint8_t *lens, unsigned n)
{
    unsigned i = 0;
    while (i < n) {
        int sym = decode(&z->in, h);
        if (sym < 0)
            return bad_symbol(z, sym, "code-length");
        if (sym < 16) {
            lens[i++] = (uint8_t)sym;
            continue;
        }
        unsigned rep, v;
        uint8_t val = 0;
        if (sym == 16) {
            if (i == 0)
                return tg__fail(TG_EFORMAT, "%s: code length repeat with no previous length",
                                z->fn);
            val = lens[i - 1];
            if (!getbits(&z->in, 2, &v))
                return truncated(z);
            rep = 3 + v;
        } else if (sym == 17) {
            if (!getbits(&z->in, 3, &v))
                return truncated(z);
            rep = 3 + v;
        } else {
            if (!getbits(&z->in, 7, &v))
                return truncated(z);
            rep = 11 + v;
        }
        if (rep > n - i)
            return tg__fail(TG_EFORMAT, "%s: code length repeat runs past the %u lengths "
                            "declared", z->fn, n);
        memset(lens + i, val, rep);
        i += rep;
    }
    return TG_OK;
}

/* Checks a literal/length or distance code read from a dynamic header. An
 * incomplete code is accepted only when it is a single code of length 1 (the
 * one case RFC 1951 describes and zlib accepts); an empty distance code is
 * fine for a block of literals only. */
static tg_status check_code(inflater *z, int err, const huff *h, const char *what)
{
    if (err == HUFF_OVER)
        return tg__fail(TG_EFORMAT, "%s: over-subscribed %s code in dynamic block", z->fn, what);
    if (err == HUFF_INCOMPLETE) {
        unsigned used = 0;
        for (unsigned len = 1; len <= MAX_BITS; len++)
            used += h->count[len];
        if (used > 1 || h->count[1] != used)
            return tg__fail(TG_EFORMAT, "%s: incomplete %s code in dynamic block", z->fn,
                            what);
    }
    return TG_OK;
}

/* Block type 2: code lengths sent in the block header, themselves coded. */
static tg_status dynamic_block(inflater *z)
{
    unsigned hlit, hdist, hclen;
    if (!getbits(&z->in, 5, &hlit) || !getbits(&z->in, 5, &hdist) ||
        !getbits(&z->in, 4, &hclen))
        return truncated(z);
    unsigned nlen = hlit + 257, ndist = hdist + 1;
    if (nlen > MAX_LCODES || ndist > MAX_DCODES)
        return tg__fail(TG_EFORMAT, "%s: dynamic block declares %u literal/length and %u "
                        "distance codes (max 286 and 30)", z->fn, nlen, ndist);
    // The code-length code is only needed here; borrow the distance table.
    tg_status st = read_clen_code(z, &z->dist, hclen + 4);
    if (st != TG_OK)
        return st;
    uint8_t lens[MAX_LCODES + MAX_DCODES];
    st = read_lengths(z, &z->dist, lens, nlen + ndist);
    if (st != TG_OK)
        return st;
    if (lens[256] == 0)
        return tg__fail(TG_EFORMAT, "%s: dynamic block has no end-of-block code", z->fn);
    st = check_code(z, huff_build(&z->lit, lens, nlen), &z->lit, "literal/length");
    if (st == TG_OK)
        st = check_code(z, huff_build(&z->dist, lens + nlen, ndist), &z->dist, "distance");
    if (st != TG_OK)
        return st;
    return codes(z);
}

tg_status tg__inflate_bits(const char *fn, tg__inbits *in, tg__outbuf *out)
{
    inflater z; // ~5 KB of tables, on the stack: no allocation per stream
    z.fn = fn;
    z.in = *in;
    z.in.origin = z.in.base + z.in.pos;
    z.out = out;
    out->base = out->len;
    unsigned last;
    tg_status st = TG_OK;
    do {
        unsigned type;
        if (!getbits(&z.in, 1, &last) || !getbits(&z.in, 2, &type)) {
            st = truncated(&z);
            break;
        }
        if (type == 0)
            st = stored_block(&z);
        else if (type == 1)
            st = fixed_block(&z);
        else if (type == 2)
            st = dynamic_block(&z);
        else
            st = tg__fail(TG_EFORMAT, "%s: reserved block type 3 near deflate byte %zu", fn,
                          at(&z.in));
    } while (st == TG_OK && !last);
    if (st == TG_OK)
        align_to_byte(&z.in);
    *in = z.in; // where the stream ended, and the window as it is now
    return st;
}

/* ---- CRC-32 ------------------------------------------------------------- */

/* Slicing-by-8 (Intel, Kounavis and Berry): eight tables let the loop fold
 * eight input bytes per step. The tables are rebuilt per call (about 2k
 * shifts) so that there is no global state to initialise across threads. */
uint32_t tg__crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t t[8][256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
        t[0][i] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int i = 0; i < 256; i++)
            t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
    crc = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^
              t[4][lo >> 24] ^ t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    }
    for (; n > 0; n--, p++)
        crc = (crc >> 8) ^ t[0][(crc ^ *p) & 0xff];
    return ~crc;
}

/* ---- public entry points ----------------------------------------------- */

tg_status tg__outbuf_finish(const char *fn, tg__outbuf *o, uint8_t **out, size_t *out_len)
{
    if (!o->data)
        o->data = tg__malloc(1); // a valid pointer even for empty output
    else if (o->cap - o->len > o->cap / 4 && o->len > 0) {
        uint8_t *p = tg__realloc(o->data, o->len);
        if (p)
            o->data = p;
    }
    if (!o->data)
        return tg__fail(TG_ENOMEM, "%s: out of memory", fn);
    *out = o->data;
    *out_len = o->len;
    return TG_OK;
}

tg_status tg__decode_args(const char *fn, const void *in, uint8_t **out, size_t *out_len)
{
    if (!in || !out || !out_len)
        return tg__fail(TG_EINVAL, "%s: NULL %s", fn, !in ? "input" : !out ? "out" : "out_len");
    return TG_OK;
}

size_t tg__inflate_first_cap(size_t in_len, size_t max)
{
    size_t cap = in_len > SIZE_MAX / 4 ? SIZE_MAX : in_len * 4;
    if (cap < 4096)
        cap = 4096;
    return cap < max ? cap : max;
}

tg_status tg__outbuf_init(const char *fn, tg__outbuf *o, size_t cap, size_t max_out)
{
    *o = (tg__outbuf){.max = max_out ? max_out : SIZE_MAX};
    if (cap > o->max)
        cap = o->max;
    if (cap == 0)
        return TG_OK;
    o->data = tg__malloc(cap);
    if (!o->data)
        return tg__fail(TG_ENOMEM, "%s: out of memory for %zu output bytes", fn, cap);
    o->cap = cap;
    return TG_OK;
}

tg_status tg_inflate(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
                     size_t max_out)
{
    static const char fn[] = "tg_inflate";
    tg_status st = tg__decode_args(fn, in, out, out_len);
    if (st != TG_OK)
        return st;
    tg__outbuf o;
    st = tg__outbuf_init(fn, &o, tg__inflate_first_cap(in_len, max_out ? max_out : SIZE_MAX),
                         max_out);
    tg__inbits b = {.in = in, .len = in_len, .ended = true};
    if (st == TG_OK)
        st = tg__inflate_bits(fn, &b, &o);
    if (st != TG_OK) {
        tg__free(o.data);
        return st;
    }
    return tg__outbuf_finish(fn, &o, out, out_len);
}

void tg_buffer_free(void *p) { tg__free(p); }
