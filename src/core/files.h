/* core/files.h - small file-system helpers shared by the commands and the stores. Internal. */
#ifndef INFERNO_CORE_FILES_H
#define INFERNO_CORE_FILES_H

/* mkdir -p of the directories above path (not path itself), mode 0755. Returns 0, or -1 with
   errno set by the mkdir that failed. Paths longer than 4095 bytes fail with ENAMETOOLONG. */
int inf__mkdir_parents(const char *path);

#endif
