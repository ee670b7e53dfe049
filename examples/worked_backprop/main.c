/* worked_backprop - the 3-2-1 sigmoid network, every number printed: the
 * forward values, the loss, each gradient from the tape beside its
 * hand-derived formula, the tape's own account of the backward walk, and one
 * gradient-descent step. docs/worked-backprop.md walks through this output. */
#include <stdio.h>
#include <string.h>

#include "worked.h"

int main(int argc, char **argv)
{
    int explain = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quiet-tape")) {
            explain = 0;
        } else {
            fprintf(stderr, "usage: %s [--quiet-tape]\n"
                            "  --quiet-tape  do not print the tape's walk of the backward pass\n",
                    argv[0]);
            return !strcmp(argv[i], "--help") ? 0 : 2;
        }
    }
    worked_result r;
    return worked_run(stdout, explain, &r) == 0 ? 0 : 1;
}
