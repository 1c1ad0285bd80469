/* rmapi.h - the part of the Redis module API (Redis 7.0) that cq's module uses.
 *
 * Debian ships no redismodule.h, so the module declares what it calls itself. A module gets
 * each API function by name from the server when it loads (rmapi_init), so these are function
 * pointers; their types and the constants below are those of the Redis 7.0 module ABI
 * (src/redismodule.h of Redis, REDISMODULE_APIVER_1).
 */
#ifndef CQ_RMAPI_H
#define CQ_RMAPI_H

#include <stddef.h>
#include <stdint.h>

#define REDISMODULE_OK     0
#define REDISMODULE_ERR    1
#define REDISMODULE_APIVER 1

#define REDISMODULE_READ  1
#define REDISMODULE_WRITE 2

#define REDISMODULE_HASH_NONE 0

#define REDISMODULE_NOTIFY_GENERIC 4
#define REDISMODULE_NOTIFY_HASH    64

#define REDISMODULE_CTX_FLAGS_LUA   1
#define REDISMODULE_CTX_FLAGS_MULTI 2
#define REDISMODULE_CTX_FLAGS_AOF   64

#define REDISMODULE_CMDFILTER_NOSELF 1

#define REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED 0

#define REDISMODULE_POSTPONED_LEN -1

#define REDISMODULE_KEYTYPE_EMPTY 0
#define REDISMODULE_KEYTYPE_LIST  2
#define REDISMODULE_KEYTYPE_HASH  3
#define REDISMODULE_KEYTYPE_SET   4
#define REDISMODULE_KEYTYPE_ZSET  5

#define REDISMODULE_REPLY_STRING  0
#define REDISMODULE_REPLY_ERROR   1
#define REDISMODULE_REPLY_INTEGER 2
#define REDISMODULE_REPLY_ARRAY   3

typedef struct RedisModuleCtx RedisModuleCtx;
typedef struct RedisModuleString RedisModuleString;
typedef struct RedisModuleKey RedisModuleKey;
typedef struct RedisModuleCallReply RedisModuleCallReply;
typedef struct RedisModuleUser RedisModuleUser;
typedef int (*RedisModuleCmdFunc)(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
typedef struct RedisModuleCommandFilterCtx RedisModuleCommandFilterCtx;
typedef struct RedisModuleCommandFilter RedisModuleCommandFilter;
typedef void (*RedisModuleCommandFilterFunc)(RedisModuleCommandFilterCtx *filter);
typedef struct RedisModuleEvent {
    uint64_t id;
    uint64_t dataver;
} RedisModuleEvent;
typedef void (*RedisModuleEventCallback)(RedisModuleCtx *ctx, RedisModuleEvent eid,
                                         uint64_t subevent, void *data);

/* Each is NULL until rmapi_init has asked the server for it, in this order (Log first, so
 * that a failure can be logged). */
#define RMAPI_FUNCTIONS(X)                                                                         \
    X(void, Log, (RedisModuleCtx * ctx, const char *level, const char *fmt, ...))                  \
    X(int, GetServerVersion, (void))                                                               \
    X(void *, Alloc, (size_t bytes))                                                               \
    X(void *, Realloc, (void *ptr, size_t bytes))                                                  \
    X(void, Free, (void *ptr))                                                                     \
    X(int, CreateCommand,                                                                          \
      (RedisModuleCtx * ctx, const char *name, RedisModuleCmdFunc f, const char *flags,            \
       int firstkey, int lastkey, int keystep))                                                    \
    X(void, SetModuleAttribs, (RedisModuleCtx * ctx, const char *name, int ver, int apiver))       \
    X(int, IsModuleNameBusy, (const char *name))                                                   \
    X(int, WrongArity, (RedisModuleCtx * ctx))                                                     \
    X(int, ReplyWithError, (RedisModuleCtx * ctx, const char *err))                                \
    X(int, ReplyWithArray, (RedisModuleCtx * ctx, long len))                                       \
    X(int, ReplyWithLongLong, (RedisModuleCtx * ctx, long long ll))                                \
    X(int, ReplyWithStringBuffer, (RedisModuleCtx * ctx, const char *buf, size_t len))             \
    X(int, ReplyWithCallReply, (RedisModuleCtx * ctx, RedisModuleCallReply * reply))               \
    X(void, ReplySetArrayLength, (RedisModuleCtx * ctx, long len))                                 \
    X(RedisModuleString *, CreateStringFromCallReply, (RedisModuleCallReply * reply))              \
    X(RedisModuleString *, CreateString, (RedisModuleCtx * ctx, const char *ptr, size_t len))      \
    X(RedisModuleString *, CreateStringFromLongLong, (RedisModuleCtx * ctx, long long ll))         \
    X(void, FreeString, (RedisModuleCtx * ctx, RedisModuleString * str))                           \
    X(const char *, StringPtrLen, (const RedisModuleString *str, size_t *len))                     \
    X(RedisModuleKey *, OpenKey, (RedisModuleCtx * ctx, RedisModuleString * name, int mode))       \
    X(int, KeyType, (RedisModuleKey * key))                                                        \
    X(size_t, ValueLength, (RedisModuleKey * key))                                                 \
    X(void, CloseKey, (RedisModuleKey * key))                                                      \
    X(RedisModuleCallReply *, Call, (RedisModuleCtx * ctx, const char *cmd, const char *fmt, ...)) \
    X(int, CallReplyType, (RedisModuleCallReply * reply))                                          \
    X(long long, CallReplyInteger, (RedisModuleCallReply * reply))                                 \
    X(size_t, CallReplyLength, (RedisModuleCallReply * reply))                                     \
    X(RedisModuleCallReply *, CallReplyArrayElement, (RedisModuleCallReply * reply, size_t i))     \
    X(const char *, CallReplyStringPtr, (RedisModuleCallReply * reply, size_t * len))              \
    X(void, FreeCallReply, (RedisModuleCallReply * reply))                                         \
    X(long long, Milliseconds, (void))                                                             \
    X(int, GetContextFlags, (RedisModuleCtx * ctx))                                                \
    X(int, HashSet, (RedisModuleKey * key, int flags, ...))                                        \
    X(int, SetAbsExpire, (RedisModuleKey * key, long long expire))                                 \
    X(int, Replicate, (RedisModuleCtx * ctx, const char *cmd, const char *fmt, ...))               \
    X(int, NotifyKeyspaceEvent,                                                                    \
      (RedisModuleCtx * ctx, int type, const char *event, RedisModuleString *key))                 \
    X(unsigned long long, GetClientId, (RedisModuleCtx * ctx))                                     \
    X(RedisModuleString *, GetClientUserNameById, (RedisModuleCtx * ctx, uint64_t id))             \
    X(RedisModuleUser *, GetModuleUserFromUserName, (RedisModuleString * name))                    \
    X(int, FreeModuleUser, (RedisModuleUser * user))                                               \
    X(int, ACLCheckCommandPermissions,                                                             \
      (RedisModuleUser * user, RedisModuleString * *argv, int argc))                               \
    X(RedisModuleCommandFilter *, RegisterCommandFilter,                                           \
      (RedisModuleCtx * ctx, RedisModuleCommandFilterFunc cb, int flags))                          \
    X(int, CommandFilterArgsCount, (RedisModuleCommandFilterCtx * fctx))                           \
    X(RedisModuleString *, CommandFilterArgGet, (RedisModuleCommandFilterCtx * fctx, int pos))     \
    X(int, SubscribeToServerEvent,                                                                 \
      (RedisModuleCtx * ctx, RedisModuleEvent event, RedisModuleEventCallback callback))

#define RMAPI_DECLARE(ret, name, args) extern ret(*RedisModule_##name) args;
RMAPI_FUNCTIONS(RMAPI_DECLARE)
#undef RMAPI_DECLARE

/* Ask the server for every function above and register the module as name. REDISMODULE_OK,
 * or REDISMODULE_ERR with *missing naming the first function this server lacks (NULL when
 * the name is taken). */
int rmapi_init(RedisModuleCtx *ctx, const char *name, int ver, const char **missing);

#endif
