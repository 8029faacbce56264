#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "darknet.h"
#include "srv_model.h"

static void log_warning(void *user, const char *where, const char *msg)
{
    (void)user;
    fprintf(stderr, "visiond: warning: %s: %s\n", where, msg);
}

/* The first *.names file in dir, or NULL. */
static int find_names(const char *dir, char *out, size_t size)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int rc = -1;
    for (struct dirent *e; (e = readdir(d));) {
        const size_t n = strlen(e->d_name);
        if (n > 6 && strcmp(e->d_name + n - 6, ".names") == 0) {
            rc = snprintf(out, size, "%s/%s", dir, e->d_name) < (int)size ? 0 : -1;
            break;
        }
    }
    closedir(d);
    return rc;
}

static int valid_model_name(const char *name)
{
    if (!*name || name[0] == '.')
        return 0;
    for (const char *p = name; *p; p++)
        if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') ||
              (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return 0;
    return 1;
}

const char *srv_models_dir(const char *given)
{
    const char *dir = given ? given : getenv("VISIOND_MODELS");
    return dir ? dir : "models";
}

int srv_model_load(const struct srv_model_spec *spec, struct eng_net **out, struct eng_err *err)
{
    const struct eng_darknet_opts opts = {.warn = log_warning, .width = spec->width,
                                          .height = spec->height};
    if (spec->cfg)
        return eng_darknet_load(spec->cfg, spec->weights, spec->names, &opts, out, err);

    const char *name = spec->name ? spec->name : SRV_DEFAULT_MODEL;
    const char *dir = srv_models_dir(spec->models_dir);
    if (!valid_model_name(name))
        return eng_err_set(err, ENG_ERR_INVALID, name, "invalid model name");
    char cfg[4096], weights[4096], names[4096], mdir[4096];
    if (snprintf(mdir, sizeof mdir, "%s/%s", dir, name) >= (int)sizeof mdir ||
        snprintf(cfg, sizeof cfg, "%s/%s.cfg", mdir, name) >= (int)sizeof cfg ||
        snprintf(weights, sizeof weights, "%s/%s.weights", mdir, name) >= (int)sizeof weights)
        return eng_err_set(err, ENG_ERR_INVALID, name, "models directory path too long");
    if (access(cfg, R_OK) != 0)
        return eng_err_set(err, ENG_ERR_IO, cfg,
                           "model '%s' not found in %s (run scripts/fetch-models, or set "
                           "VISIOND_MODELS / --models-dir)", name, dir);
    const int have_names = find_names(mdir, names, sizeof names) == 0;
    return eng_darknet_load(cfg, weights, have_names ? names : NULL, &opts, out, err);
}
