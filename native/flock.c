// flock(2) on a file descriptor the caller owns, which Node does not expose: the machine-wide
// allocation registry (src/devcluster/network/registry.ts) holds its lock on its own fd, so
// releasing it is one synchronous call and never waits for the event loop.
#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

// tryLock(fd): LOCK_EX|LOCK_NB; true when taken, false when another open file holds it.
// unlock(fd): LOCK_UN. Any other failure throws with the errno's text.
static napi_value Flock(napi_env env, napi_callback_info info, int op) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "flock: the first argument must be a file descriptor");
    return NULL;
  }
  int rc;
  do {
    rc = flock(fd, op);
  } while (rc != 0 && errno == EINTR);
  napi_value result;
  if (rc != 0) {
    if ((op & LOCK_NB) && errno == EWOULDBLOCK) {
      napi_get_boolean(env, false, &result);
      return result;
    }
    char message[128];
    snprintf(message, sizeof(message), "flock(%d): %s", fd, strerror(errno));
    napi_throw_error(env, NULL, message);
    return NULL;
  }
  napi_get_boolean(env, true, &result);
  return result;
}

static napi_value TryLock(napi_env env, napi_callback_info info) { return Flock(env, info, LOCK_EX | LOCK_NB); }
static napi_value Unlock(napi_env env, napi_callback_info info) { return Flock(env, info, LOCK_UN); }

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "tryLock", NAPI_AUTO_LENGTH, TryLock, NULL, &fn);
  napi_set_named_property(env, exports, "tryLock", fn);
  napi_create_function(env, "unlock", NAPI_AUTO_LENGTH, Unlock, NULL, &fn);
  napi_set_named_property(env, exports, "unlock", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
