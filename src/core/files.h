/* core/files.h - small file-system helpers shared by the commands and the stores. Internal. */
#ifndef INFERNO_CORE_FILES_H
#define INFERNO_CORE_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "inferno/status.h"

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

/*
 * An output file written to a temporary file and put in place only when complete. The file is
 * created unnamed (O_TMPFILE) in OUT's directory and linked as OUT.tmp.XXXXXX only at the end,
 * then renamed over OUT, so a run killed by SIGKILL (or a crash) leaves nothing behind. Where
 * the filesystem has no O_TMPFILE (or /proc is missing), the file is created named (mkstemp)
 * instead. Either way the run holds an exclusive flock on it; every open first removes the
 * OUT.tmp.XXXXXX files that no live run holds (left by a run that was killed), so none
 * accumulate. Use: inf__outfile_open, write to fd (fdopen it; keep it open), flush and fsync,
 * inf__outfile_commit; then close fd; on any failure inf__outfile_abandon after closing fd.
 */
struct inf__outfile {
    int fd;
    bool unnamed; /* O_TMPFILE: no name until linked */
    char *tmp;    /* OUT.tmp.XXXXXX: the name it has (named) or will get (unnamed); freed by
                     commit and abandon */
};

/* OUT must be a regular file when it exists (following links): never replace a device, FIFO,
   directory or socket. INF_EINVAL naming it otherwise. */
inf_status inf__outfile_check_target(const char *out_path, struct inf_error *err);
inf_status inf__outfile_open(const char *out_path, struct inf__outfile *o, struct inf_error *err);
/* Give the finished (flushed, synced) file its name; checks the target again first. */
inf_status inf__outfile_commit(struct inf__outfile *o, const char *out_path, struct inf_error *err);
/* Remove what a failed run created (an unnamed file goes away with its descriptor). */
void inf__outfile_abandon(struct inf__outfile *o);

#endif
