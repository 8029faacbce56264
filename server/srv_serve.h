/* srv_serve.h - `visiond serve`: the HTTP daemon. Returns the process exit status. */
#ifndef SRV_SERVE_H
#define SRV_SERVE_H

int srv_serve(int argc, char **argv);

#endif
