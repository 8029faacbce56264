/* srv_deepstack.c - the DeepStack / CodeProject.AI routes that run no job: the custom model list and the
 * scene route, which answers that no scene model is served (DeepStack's own 404 shape, so clients that
 * read `success` first get a clear error rather than an unexpected shape). */
#include "proto_detect.h"
#include "srv_app.h"
#include "srv_route.h"

void srv_custom_list_handler(struct srv_req *req, void *arg)
{
    const struct srv_app *app = arg;
    const char *names[SRV_MAX_MODELS];
    for (int i = 0; i < app->n_models; i++)
        names[i] = app->models[i].name;
    srv_req_reply_json(req, 200, proto_deepstack_models_list_json(names, app->n_models), NULL);
}

void srv_scene_handler(struct srv_req *req, void *app)
{
    (void)app;
    srv_req_reply_code(req, PROTO_ERR_NOT_FOUND, NULL,
                       "no scene model is served: visiond detects objects (/v1/vision/detection, "
                       "/v1/vision/custom/{model}) and faces (/v1/vision/face), it does not classify scenes");
}
