/*
 * For fuzz targets whose parser reads a file: the input goes to a file in a
 * directory of this process's own, made for the input and removed after it
 * (libFuzzer ends with _Exit, so nothing may be left for an atexit hook).
 */
#ifndef TOKENMINT_FUZZ_TEMP_H
#define TOKENMINT_FUZZ_TEMP_H

#include <stddef.h>
#include <stdint.h>

/* The process's directory ("/tmp/tm-fuzz-XXXXXX"); aborts when it cannot be made. */
const char *fuzz_temp_dir(void);
/* Writes data to DIR/name and returns its path (static buffer); aborts on error. */
const char *fuzz_temp_write(const char *name, const uint8_t *data, size_t size);
/* Makes the directory DIR/name (its parent must exist); aborts on error. */
const char *fuzz_temp_mkdir(const char *name);

/* Removes the directory and what was made there. */
void fuzz_temp_done(void);

#endif
