/*
 * replay.c - a main() for fuzz targets built without libFuzzer: runs every file named on the
 * command line (directories are walked one level deep) through LLVMFuzzerTestOneInput once,
 * so committed corpora and past crashes run as ordinary CTest tests under gcc + sanitizers.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
    struct stat sb;
    FILE *f = stat(path, &sb) == 0 ? fopen(path, "rb") : NULL;
    if (!f) {
        fprintf(stderr, "replay: cannot open '%s'\n", path);
        return 1;
    }
    /* The target gets an exactly-sized buffer so ASan catches reads past the end. */
    size_t len = (size_t)sb.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    size_t got = buf ? fread(buf, 1, len, f) : 0;
    fclose(f);
    if (!buf || got != len) {
        fprintf(stderr, "replay: cannot read '%s'\n", path);
        free(buf);
        return 1;
    }
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0, failures = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: '%s' does not exist\n", argv[i]);
            failures++;
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) {
            failures += run_file(argv[i]);
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            char path[4096];
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
                failures += run_file(path);
                files++;
            }
        }
        if (d)
            closedir(d);
    }
    printf("replayed %d inputs, %d unreadable\n", files, failures);
    if (files == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    return failures ? 1 : 0;
}
