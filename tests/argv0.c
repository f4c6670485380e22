/* argv0.c - a stand-in real backend for tests/backend.sh: says on stderr
 * the argv[0] and DEVICE_URI it was run with, then exits 0.  (A script
 * cannot tell its argv[0]: the kernel hands its interpreter the script's
 * path instead.) */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    const char *uri = getenv("DEVICE_URI");

    fprintf(stderr, "DEBUG: argv0: argv[0]=%s DEVICE_URI=%s\n", argc > 0 ? argv[0] : "",
            uri ? uri : "");
    return 0;
}
