/* worked_backprop - the 3-2-1 sigmoid network, every number printed: the
 * forward values, the loss, each gradient from the tape beside its
 * hand-derived formula, the tape's own account of the backward walk, and one
 * gradient-descent step. docs/worked-backprop.md walks through this output.
 * --dot PATH also writes the recorded graph as Graphviz DOT, the source of
 * docs/worked-backprop.svg. */
#include <stdio.h>
#include <string.h>

#include "worked.h"

static int usage(const char *prog, int rc)
{
    fprintf(rc ? stderr : stdout,
            "usage: %s [--quiet-tape] [--dot PATH]\n"
            "  --quiet-tape  do not print the tape's walk of the backward pass\n"
            "  --dot PATH    write the graph (values, gradients) as Graphviz DOT to PATH;\n"
            "                render it with: dot -Tsvg PATH -o graph.svg\n",
            prog);
    return rc;
}

int main(int argc, char **argv)
{
    int explain = 1;
    const char *dot_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quiet-tape"))
            explain = 0;
        else if (!strcmp(argv[i], "--dot") && i + 1 < argc)
            dot_path = argv[++i];
        else
            return usage(argv[0], !strcmp(argv[i], "--help") ? 0 : 2);
    }
    FILE *dot = NULL;
    if (dot_path && !(dot = fopen(dot_path, "w"))) {
        perror(dot_path);
        return 1;
    }
    worked_result r;
    int rc = worked_run(stdout, explain, dot, &r) == 0 ? 0 : 1;
    if (dot && fclose(dot) != 0) {
        perror(dot_path);
        rc = 1;
    }
    return rc;
}
