/* rmapi.c - the module API's functions, asked of the server by name when the module loads. */
#include "rmapi.h"

#define RMAPI_DEFINE(ret, name, args) ret(*RedisModule_##name) args;
RMAPI_FUNCTIONS(RMAPI_DEFINE)
#undef RMAPI_DEFINE

int rmapi_init(RedisModuleCtx *ctx, const char *name, int ver, const char **missing)
{
    /* The context's first member is the server's lookup function (the module ABI). */
    int (*get_api)(const char *, void *) = (int (*)(const char *, void *))((void **)ctx)[0];

    *missing = NULL;
#define RMAPI_GET(ret, fn, args)                                                    \
    if (get_api("RedisModule_" #fn, (void *)&RedisModule_##fn) != REDISMODULE_OK) { \
        *missing = "RedisModule_" #fn;                                              \
        return REDISMODULE_ERR;                                                     \
    }
    RMAPI_FUNCTIONS(RMAPI_GET)
#undef RMAPI_GET
    if (RedisModule_IsModuleNameBusy(name)) return REDISMODULE_ERR;
    RedisModule_SetModuleAttribs(ctx, name, ver, REDISMODULE_APIVER);
    return REDISMODULE_OK;
}
