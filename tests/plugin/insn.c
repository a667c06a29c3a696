/*
 * insn: a QEMU TCG plugin that counts guest instructions per vCPU and
 * executions per translation block (TB), for the bench's "guest
 * instructions per forwarded packet" figure.
 *
 * Load: -plugin /path/libinsn.so,sock=/path/to/socket
 * The plugin listens on that unix socket; each connection sends one
 * request line and gets the answer, then the plugin closes it:
 *   dump V            every TB vCPU V executed:  "tb VADDR NINSNS COUNT"
 *   snap V A1 A2 ...  only the TBs at the given (hex) guest addresses
 * Both answers start with "vcpu V insns TOTAL" (instructions vCPU V has
 * executed since boot) and end with "end". A snap reads the counters back
 * to back, so its instruction total and TB counts are from one moment.
 *
 * Debian ships no qemu-plugin.h, so the few declarations used are written
 * here from the plugin API (version 4, QEMU 9.1 to 10.0).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS,
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS,
};
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id,
                                               struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index,
                                            void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
                                          qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags,
                                          void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);

#define EXPORT __attribute__((visibility("default")))
EXPORT int qemu_plugin_version = 4;

#define MAX_VCPUS 16
#define SLOTS (1u << 20)

struct tb_info {
    uint64_t vaddr;
    uint64_t n;
    uint64_t count[MAX_VCPUS];
    struct tb_info *next; /* same vaddr, another length */
};

struct per_vcpu {
    uint64_t insns;
    char pad[56];
};

static struct per_vcpu insns[MAX_VCPUS];
static struct tb_info **table;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char sock_path[108];

static uint32_t slot_of(uint64_t vaddr)
{
    uint64_t h = vaddr * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 44) & (SLOTS - 1);
}

/* With the lock held: the chain for vaddr (NULL if none). */
static struct tb_info **chain_of(uint64_t vaddr)
{
    uint32_t s = slot_of(vaddr);
    for (uint32_t i = 0; i < SLOTS; i++) {
        struct tb_info **c = &table[(s + i) & (SLOTS - 1)];
        if (*c == NULL || (*c)->vaddr == vaddr) {
            return c;
        }
    }
    return NULL;
}

static void on_exec(unsigned int vcpu, void *udata)
{
    struct tb_info *t = udata;
    if (vcpu >= MAX_VCPUS) {
        return;
    }
    /* Only this vCPU's thread writes these words. */
    __atomic_store_n(&t->count[vcpu], t->count[vcpu] + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&insns[vcpu].insns, insns[vcpu].insns + t->n,
                     __ATOMIC_RELAXED);
}

static void on_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    uint64_t vaddr = qemu_plugin_tb_vaddr(tb);
    uint64_t n = qemu_plugin_tb_n_insns(tb);
    struct tb_info *t = NULL;
    pthread_mutex_lock(&lock);
    struct tb_info **c = chain_of(vaddr);
    if (c != NULL) {
        for (t = *c; t != NULL && t->n != n; t = t->next) {
        }
        if (t == NULL) {
            t = calloc(1, sizeof(*t));
            if (t != NULL) {
                t->vaddr = vaddr;
                t->n = n;
                t->next = *c;
                *c = t;
            }
        }
    }
    pthread_mutex_unlock(&lock);
    if (t != NULL) {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, t);
    }
}

static void put_tb(FILE *f, const struct tb_info *t, unsigned v)
{
    fprintf(f, "tb %llx %llu %llu\n", (unsigned long long)t->vaddr,
            (unsigned long long)t->n,
            (unsigned long long)__atomic_load_n(&t->count[v], __ATOMIC_RELAXED));
}

static void answer(FILE *f, char *req)
{
    char *save = NULL;
    char *verb = strtok_r(req, " \t\r\n", &save);
    char *vs = strtok_r(NULL, " \t\r\n", &save);
    if (verb == NULL || vs == NULL || atoi(vs) < 0 || atoi(vs) >= MAX_VCPUS) {
        fprintf(f, "error: expected 'dump V' or 'snap V ADDR...'\nend\n");
        return;
    }
    unsigned v = (unsigned)atoi(vs);
    if (strcmp(verb, "snap") == 0) {
        /* Find the TBs first, then read every counter back to back. */
        struct tb_info *found[256];
        size_t nfound = 0;
        char *a;
        pthread_mutex_lock(&lock);
        while ((a = strtok_r(NULL, " \t\r\n", &save)) != NULL && nfound < 256) {
            struct tb_info **c = chain_of(strtoull(a, NULL, 16));
            for (struct tb_info *t = c ? *c : NULL; t && nfound < 256; t = t->next) {
                found[nfound++] = t;
            }
        }
        pthread_mutex_unlock(&lock);
        uint64_t total = __atomic_load_n(&insns[v].insns, __ATOMIC_RELAXED);
        uint64_t counts[256];
        for (size_t i = 0; i < nfound; i++) {
            counts[i] = __atomic_load_n(&found[i]->count[v], __ATOMIC_RELAXED);
        }
        fprintf(f, "vcpu %u insns %llu\n", v, (unsigned long long)total);
        for (size_t i = 0; i < nfound; i++) {
            fprintf(f, "tb %llx %llu %llu\n", (unsigned long long)found[i]->vaddr,
                    (unsigned long long)found[i]->n, (unsigned long long)counts[i]);
        }
    } else if (strcmp(verb, "dump") == 0) {
        fprintf(f, "vcpu %u insns %llu\n", v,
                (unsigned long long)__atomic_load_n(&insns[v].insns, __ATOMIC_RELAXED));
        pthread_mutex_lock(&lock);
        for (uint32_t i = 0; i < SLOTS; i++) {
            for (struct tb_info *t = table[i]; t != NULL; t = t->next) {
                if (__atomic_load_n(&t->count[v], __ATOMIC_RELAXED) != 0) {
                    put_tb(f, t, v);
                }
            }
        }
        pthread_mutex_unlock(&lock);
    } else {
        fprintf(f, "error: unknown request %s\n", verb);
    }
    fprintf(f, "end\n");
}

static void *serve(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) {
                continue;
            }
            return NULL;
        }
        char req[8192];
        size_t len = 0;
        while (len < sizeof(req) - 1) {
            ssize_t r = read(fd, req + len, sizeof(req) - 1 - len);
            if (r <= 0) {
                break;
            }
            len += (size_t)r;
            if (memchr(req, '\n', len) != NULL) {
                break;
            }
        }
        req[len] = 0;
        FILE *f = fdopen(fd, "w");
        if (f == NULL) {
            close(fd);
            continue;
        }
        answer(f, req);
        fclose(f);
    }
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                               int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "sock=", 5) == 0) {
            snprintf(sock_path, sizeof(sock_path), "%s", argv[i] + 5);
        }
    }
    if (sock_path[0] == 0) {
        fprintf(stderr, "insn plugin: needs sock=PATH\n");
        return -1;
    }
    table = calloc(SLOTS, sizeof(*table));
    if (table == NULL) {
        return -1;
    }
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    unlink(sock_path);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(lfd, 4) != 0) {
        fprintf(stderr, "insn plugin: %s: %s\n", sock_path, strerror(errno));
        return -1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, serve, (void *)(intptr_t)lfd) != 0) {
        return -1;
    }
    pthread_detach(th);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_trans);
    return 0;
}
