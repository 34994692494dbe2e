/* core/files.h - small file-system helpers shared by the commands and the stores. Internal. */
#ifndef INFERNO_CORE_FILES_H
#define INFERNO_CORE_FILES_H

#include <stddef.h>
#include <stdio.h>

/* mkdir -p of the directories above path (not path itself), mode 0755. Returns 0, or -1 with
   errno set by the mkdir that failed. Paths longer than 4095 bytes fail with ENAMETOOLONG. */
int inf__mkdir_parents(const char *path);

/*
 * Read f to its end into a NUL-terminated buffer the caller frees (*len: the bytes read, the
 * NUL not counted). More than max bytes is an error, so that /dev/zero or an endless pipe
 * cannot grow memory without bound. NULL on failure with errno set: EFBIG (over max), ENOMEM,
 * or the error of the read.
 */
char *inf__read_stream(FILE *f, size_t max, size_t *len);

#endif
