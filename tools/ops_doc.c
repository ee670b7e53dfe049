/* ops_doc.c - writes docs/ops.md's tables of the row-defined elementwise ops
 * from TG_UNARY_OPS and TG_BINARY_OPS (include/tapegrad/unary.h, binary.h),
 * each between its marker lines, so the docs cannot drift from the code. Run through `ninja -C build ops-doc`;
 * check_ops fails when a row's line is missing. */
#define _POSIX_C_SOURCE 200809L /* fmemopen */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad/tapegrad.h>

#define END "<!-- end of generated rows -->\n"

#define UNARY_DOC_ROW(name, formula, derivative, ...) \
    fprintf(out, "| `tg_" #name "(x)` | %s | %s |\n", formula, derivative);
#define BINARY_DOC_ROW(name, formula, da, db, ...) \
    fprintf(out, "| `tg_" #name "(a, b)` | %s | %s | %s |\n", formula, da, db);

static void unary_rows(FILE *out) { TG_UNARY_OPS(UNARY_DOC_ROW) }
static void binary_rows(FILE *out) { TG_BINARY_OPS(BINARY_DOC_ROW) }

static const struct block {
    const char *begin;
    void (*write)(FILE *out);
} blocks[] = {
    {"<!-- generated from include/tapegrad/unary.h by ninja ops-doc: do not edit -->\n",
     unary_rows},
    {"<!-- generated from include/tapegrad/binary.h by ninja ops-doc: do not edit -->\n",
     binary_rows},
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s docs/ops.md\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    static char text[1 << 20], result[1 << 21];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    // Each block's rows are replaced in turn; the rest of the text is kept.
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
        char *begin = strstr(text, blocks[b].begin), *end = begin ? strstr(begin, END) : NULL;
        if (!begin || !end) {
            fprintf(stderr, "%s: marker lines of block %zu not found\n", argv[1], b);
            return 1;
        }
        FILE *mem = fmemopen(result, sizeof result, "w");
        if (!mem)
            return 1;
        fwrite(text, 1, (size_t)(begin - text) + strlen(blocks[b].begin), mem);
        blocks[b].write(mem);
        fputs(end, mem);
        long len = ftell(mem);
        fclose(mem);
        if (len < 0 || (size_t)len >= sizeof text)
            return 1;
        memcpy(text, result, (size_t)len);
        text[len] = '\0';
    }
    f = fopen(argv[1], "w");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fputs(text, f);
    if (fclose(f) != 0) {
        perror(argv[1]);
        return 1;
    }
    return 0;
}
