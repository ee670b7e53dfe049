/* ops_doc.c - writes docs/ops.md's table of the one-input ops from the rows of
 * TG_UNARY_OPS (include/tapegrad/unary.h), between its two marker lines, so
 * the docs cannot drift from the code. Run through `ninja -C build ops-doc`;
 * check_ops fails when a row's line is missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad/tapegrad.h>

#define BEGIN "<!-- generated from include/tapegrad/unary.h by ninja ops-doc: do not edit -->\n"
#define END "<!-- end of generated rows -->\n"

#define DOC_ROW(name, formula, derivative, ...) \
    fprintf(out, "| `tg_" #name "(x)` | %s | %s |\n", formula, derivative);

static void write_rows(FILE *out) { TG_UNARY_OPS(DOC_ROW) }

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
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *begin = strstr(text, BEGIN), *end = begin ? strstr(begin, END) : NULL;
    if (!begin || !end) {
        fprintf(stderr, "%s: marker lines not found\n", argv[1]);
        return 1;
    }
    f = fopen(argv[1], "w");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fwrite(text, 1, (size_t)(begin - text) + strlen(BEGIN), f);
    write_rows(f);
    fputs(end, f);
    if (fclose(f) != 0) {
        perror(argv[1]);
        return 1;
    }
    return 0;
}
