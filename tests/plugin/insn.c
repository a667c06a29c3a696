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
 *   loop V ADDR       from now on, vCPU V's loop iterations start at the
 *                     TB at guest address ADDR (hex); clears the
 *                     iteration counts
 *   iters V           vCPU V's iteration counts since its `loop`:
 *                     "loop ADDR", "iter LEN COUNT" per iteration length,
 *                     "tainted COUNT INSNS", "overflow COUNT INSNS"
 * Every answer starts with "vcpu V insns TOTAL" (instructions vCPU V has
 * executed since boot) and ends with "end". A snap reads the counters back
 * to back, so its instruction total and TB counts are from one moment.
 *
 * Iterations: user-space instructions from one execution of the loop's
 * start TB to the next are one iteration; its length is counted in a
 * histogram. An iteration during which vCPU V ran any kernel TB (timer
 * tick, interrupt, a switch to another process) is "tainted": its user
 * instructions may be another process's, so it is only counted apart.
 * Kernel instructions are never part of a length.
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

#define HIST 4096 /* distinct iteration lengths kept per vCPU */
#define KERNEL_START 0xffff800000000000ull

struct per_vcpu {
    uint64_t insns;
    /* Iteration accounting, written by the vCPU's thread only. */
    uint64_t marker;  /* start TB address; 0: off */
    uint64_t acc;     /* user instructions of the current iteration */
    int started;      /* the current iteration began at the marker */
    int tainted;      /* a kernel TB ran in the current iteration */
    uint64_t hist_len[HIST]; /* 0: free slot */
    uint64_t hist_count[HIST];
    uint64_t tainted_count, tainted_insns;
    uint64_t overflow_count, overflow_insns;
    char pad[64];
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

#define BUMP(x, d) __atomic_store_n(&(x), (x) + (d), __ATOMIC_RELAXED)

/* The vCPU's thread: one iteration of length len ended. */
static void end_iteration(struct per_vcpu *p, uint64_t len)
{
    if (p->tainted) {
        BUMP(p->tainted_count, 1);
        BUMP(p->tainted_insns, len);
        return;
    }
    uint32_t h = (uint32_t)((len * 0x9e3779b97f4a7c15ull) >> 52) & (HIST - 1);
    for (uint32_t i = 0; i < HIST; i++) {
        uint32_t s = (h + i) & (HIST - 1);
        uint64_t l = p->hist_len[s];
        if (l == len) {
            BUMP(p->hist_count[s], 1);
            return;
        }
        if (l == 0) {
            /* The count first, so a reader that sees the length sees it. */
            __atomic_store_n(&p->hist_count[s], 1, __ATOMIC_RELAXED);
            __atomic_store_n(&p->hist_len[s], len, __ATOMIC_RELEASE);
            return;
        }
    }
    BUMP(p->overflow_count, 1);
    BUMP(p->overflow_insns, len);
}

static void on_exec(unsigned int vcpu, void *udata)
{
    struct tb_info *t = udata;
    if (vcpu >= MAX_VCPUS) {
        return;
    }
    struct per_vcpu *p = &insns[vcpu];
    /* Only this vCPU's thread writes these words. */
    BUMP(t->count[vcpu], 1);
    BUMP(p->insns, t->n);
    uint64_t m = __atomic_load_n(&p->marker, __ATOMIC_ACQUIRE);
    if (m == 0) {
        return;
    }
    if (t->vaddr >= KERNEL_START) {
        p->tainted = 1;
        return;
    }
    if (t->vaddr == m) {
        if (p->started && p->acc > 0) {
            end_iteration(p, p->acc);
        }
        p->started = 1;
        p->tainted = 0;
        p->acc = 0;
    }
    p->acc += t->n;
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

/*
 * The server thread: a new marker for vCPU v. The vCPU's thread owns the
 * iteration state; with the marker 0 it stops touching it (on_exec returns
 * early), so after a pause longer than any one callback the state can be
 * cleared here, and the new marker published. The first iteration counted
 * is the first that starts at the new marker.
 */
static void set_marker(unsigned v, uint64_t m)
{
    struct per_vcpu *p = &insns[v];
    __atomic_store_n(&p->marker, 0, __ATOMIC_RELEASE);
    /* Let the vCPU finish a callback that read the old marker. */
    usleep(100000);
    p->started = 0;
    p->tainted = 0;
    p->acc = 0;
    for (uint32_t i = 0; i < HIST; i++) {
        __atomic_store_n(&p->hist_len[i], 0, __ATOMIC_RELAXED);
        __atomic_store_n(&p->hist_count[i], 0, __ATOMIC_RELAXED);
    }
    p->tainted_count = p->tainted_insns = 0;
    p->overflow_count = p->overflow_insns = 0;
    __atomic_store_n(&p->marker, m, __ATOMIC_RELEASE);
}

static void answer(FILE *f, char *req)
{
    char *save = NULL;
    char *verb = strtok_r(req, " \t\r\n", &save);
    char *vs = strtok_r(NULL, " \t\r\n", &save);
    if (verb == NULL || vs == NULL || atoi(vs) < 0 || atoi(vs) >= MAX_VCPUS) {
        fprintf(f, "error: expected 'dump V', 'snap V ADDR...', 'loop V ADDR' or 'iters V'\nend\n");
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
    } else if (strcmp(verb, "loop") == 0) {
        char *a = strtok_r(NULL, " \t\r\n", &save);
        uint64_t m = a ? strtoull(a, NULL, 16) : 0;
        if (m == 0 || m >= KERNEL_START) {
            fprintf(f, "error: expected 'loop V ADDR' with a user-space ADDR\n");
        } else {
            set_marker(v, m);
            fprintf(f, "vcpu %u insns %llu\nloop %llx\n", v,
                    (unsigned long long)__atomic_load_n(&insns[v].insns, __ATOMIC_RELAXED),
                    (unsigned long long)m);
        }
    } else if (strcmp(verb, "iters") == 0) {
        struct per_vcpu *p = &insns[v];
        fprintf(f, "vcpu %u insns %llu\nloop %llx\n", v,
                (unsigned long long)__atomic_load_n(&p->insns, __ATOMIC_RELAXED),
                (unsigned long long)__atomic_load_n(&p->marker, __ATOMIC_RELAXED));
        for (uint32_t i = 0; i < HIST; i++) {
            uint64_t l = __atomic_load_n(&p->hist_len[i], __ATOMIC_ACQUIRE);
            if (l != 0) {
                fprintf(f, "iter %llu %llu\n", (unsigned long long)l,
                        (unsigned long long)__atomic_load_n(&p->hist_count[i], __ATOMIC_RELAXED));
            }
        }
        fprintf(f, "tainted %llu %llu\noverflow %llu %llu\n",
                (unsigned long long)__atomic_load_n(&p->tainted_count, __ATOMIC_RELAXED),
                (unsigned long long)__atomic_load_n(&p->tainted_insns, __ATOMIC_RELAXED),
                (unsigned long long)__atomic_load_n(&p->overflow_count, __ATOMIC_RELAXED),
                (unsigned long long)__atomic_load_n(&p->overflow_insns, __ATOMIC_RELAXED));
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
