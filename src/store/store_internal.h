/* store/store_internal.h - what models.c and registry.c share. Internal to src/store/. */
#ifndef INFERNO_STORE_INTERNAL_H
#define INFERNO_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>

#include "inferno/models.h"

/* CREATE TABLE IF NOT EXISTS registry(name, path, source, digest, added). */
extern const char inf__registry_ddl[];

/* Every row of the registry of an open database, sorted by name (the caller frees *out). */
inf_status inf__registry_read(sqlite3 *db, struct inf_model_reg **out, size_t *n,
                              struct inf_error *err);

#endif
