/* srv_config_print.c - the settings table printed: --print-config (each effective value and where it
 * came from) and --help (each setting's flag, bounds and default). The table: srv_config.c. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "srv_config_setting.h"

void srv_config_print(const struct srv_config *cfg, FILE *out)
{
    size_t n;
    const struct setting *settings = srv_config_settings(&n);
    char value[SRV_CONFIG_VALUE_MAX];
    int name_w = 0, value_w = 0;
    for (size_t i = 0; i < n; i++) {
        srv_config_format_value(cfg, &settings[i], value, sizeof value);
        int nl = (int)strlen(settings[i].name), vl = (int)strlen(value);
        name_w = nl > name_w ? nl : name_w;
        value_w = vl > value_w && vl <= 40 ? vl : value_w; /* a long path does not push every comment */
    }
    fprintf(out, "# visiond effective configuration; config file: %s\n",
            cfg->config_path[0] ? cfg->config_path : "none");
    for (size_t i = 0; i < n; i++) {
        char where[ENG_ERR_WHERE_MAX];
        srv_config_format_value(cfg, &settings[i], value, sizeof value);
        srv_config_where(cfg, settings[i].name, where, sizeof where);
        bool cores = (settings[i].flags & F_CORES) && cfg->origin[i].source == SRV_CONFIG_FROM_DEFAULT;
        fprintf(out, "%-*s = %-*s  # %s%s\n", name_w, settings[i].name, value_w, value, where,
                cores ? " (online cores)" : "");
    }
}

void srv_config_usage(FILE *out)
{
    size_t n;
    const struct setting *settings = srv_config_settings(&n);
    fprintf(out, "options (each also VISIOND_<NAME> in the environment, or `name = value` in the config file;\n"
                 "flags override the environment, which overrides the file):\n");
    fprintf(out, "  %-30s %s\n", "--config FILE",
            "config file (default " SRV_CONFIG_DEFAULT_PATH ", if present; also VISIOND_CONFIG)");
    for (size_t i = 0; i < n; i++) {
        const struct setting *s = &settings[i];
        char flag[64], left[160], extra[96] = "";
        srv_config_flag_name(s, flag, sizeof flag);
        if (s->type == T_BOOL)
            snprintf(left, sizeof left, "%s, --no-%s", flag, flag + 2);
        else
            snprintf(left, sizeof left, "%s %s", flag, s->arg);
        if (s->type == T_INT || s->type == T_LONG || s->type == T_SIZE || s->type == T_FLOAT) {
            char bounds[80];
            srv_config_format_bounds(s, bounds, sizeof bounds);
            if (s->flags & F_CORES)
                snprintf(extra, sizeof extra, " [%s]", bounds);
            else
                snprintf(extra, sizeof extra, " [default %s; %s]", s->dflt, bounds);
        } else if (s->dflt && s->dflt[0]) {
            snprintf(extra, sizeof extra, " [default %s]", s->dflt);
        }
        fprintf(out, "  %-30s %s%s\n", left, s->help, extra);
    }
    fprintf(out, "  %-30s %s\n", "--print-config", "print the effective settings and their sources, then exit");
    fprintf(out, "  %-30s %s\n", "-h, --help", "this help");
}
