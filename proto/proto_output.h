/* proto_output.h - how numbers are written in every JSON answer: the process-wide output precision.
 *
 * Rounded (the default, the documented units): boxes and landmarks to 0.01 px, scores to 1e-4, at most
 * 6 significant digits. Full: every float exactly as computed (9 significant digits, enough to read
 * back the same float), so two runs or two programs can be compared bit for bit; a rounding boundary
 * can then neither hide nor fake a difference (tests/ref/test_http_faces.py, test_bitwise.py). Set
 * once at start-up (serve: the json_precision setting; the CLI commands: VISIOND_JSON_PRECISION),
 * before any answer is encoded. */
#ifndef PROTO_OUTPUT_H
#define PROTO_OUTPUT_H

enum proto_precision {
    PROTO_PRECISION_ROUNDED = 0,
    PROTO_PRECISION_FULL,
};

void proto_set_precision(enum proto_precision p);
enum proto_precision proto_get_precision(void);

/* "rounded" or "full" -> 0 and *p set; anything else -> -1. */
int proto_precision_parse(const char *name, enum proto_precision *p);

#endif
