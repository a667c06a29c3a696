/*
 * rte_mempool side of `pool-bench --vs-dpdk`: the per-lcore loop of DPDK's
 * mempool_perf_autotest (each lcore takes n_keep objects in bulks of
 * n_get_bulk, returns them in bulks of n_put_bulk; the rate is objects
 * taken and returned per second, summed over lcores), driven one case at
 * a time from stdin so that pool-bench can alternate it with its own pool
 * in one run.
 *
 * Built by pool-bench at run time:
 *   gcc -O3 $(pkg-config --cflags libdpdk) mempool_bench.c \
 *       $(pkg-config --libs libdpdk) -o mempool_bench
 * Run: mempool_bench [EAL options] -- then lines on stdin:
 *   CORES CACHE GET PUT KEEP MS SINGLE [MAX [CPU]]
 * (SINGLE 1: rte_mempool_get/rte_mempool_put, one object per call, which
 * look the lcore's cache up on every call; 0: rte_mempool_generic_get/put
 * with the lcore's cache pointer taken once, as the autotest does).
 * MAX, if given and not 0, also stops each lcore after MAX objects (a
 * fixed amount of work, for instruction counts under callgrind). CPU 1
 * times each lcore with its thread's CPU clock instead of the monotonic
 * clock (the time it ran, not the time other processes held its core).
 * Each line is answered with "rate R" (objects per second) or "error ...".
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

#define MAX_KEEP 512
#define ELT_SIZE 2048
/* Objects between two clock reads (the autotest's N). */
#define CHECK_EVERY 65536

struct bench_case {
	struct rte_mempool *mp;
	unsigned int cores, get, put, keep, single;
	double seconds;
	uint64_t max;
	int cpu;
};

static struct bench_case bc;
static volatile unsigned int started;
static double rates[RTE_MAX_LCORE];
static int failed[RTE_MAX_LCORE];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(bc.cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int per_lcore(void *arg)
{
	(void)arg;
	unsigned int lcore = rte_lcore_id();
	struct rte_mempool *mp = bc.mp;
	struct rte_mempool_cache *cache = rte_mempool_default_cache(mp, lcore);
	void *table[MAX_KEEP + 128];
	unsigned int keep = bc.keep, get = bc.get, put = bc.put;
	unsigned int rounds = CHECK_EVERY / keep;
	uint64_t count = 0;
	double start, t;

	if (rounds == 0)
		rounds = 1;
	__atomic_add_fetch(&started, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&started, __ATOMIC_ACQUIRE) < bc.cores)
		;
	start = now_s();
	do {
		for (unsigned int r = 0; r < rounds; r++) {
			unsigned int idx;
			if (bc.single) {
				for (idx = 0; idx < keep; idx++) {
					if (rte_mempool_get(mp, &table[idx]) < 0)
						goto empty;
				}
				for (idx = 0; idx < keep; idx++)
					rte_mempool_put(mp, table[idx]);
			} else {
				for (idx = 0; idx < keep; idx += get) {
					if (rte_mempool_generic_get(mp, &table[idx], get, cache) < 0)
						goto empty;
				}
				for (idx = 0; idx < keep; idx += put)
					rte_mempool_generic_put(mp, &table[idx], put, cache);
			}
		}
		count += (uint64_t)rounds * keep;
		t = now_s() - start;
	} while (t < bc.seconds && (bc.max == 0 || count < bc.max));
	rates[lcore] = (double)count / t;
	return 0;
empty:
	failed[lcore] = 1;
	return -1;
}

/* The autotest's pool size for `cores` lcores. */
static unsigned int pool_size(unsigned int cores)
{
	return cores * (MAX_KEEP + RTE_MEMPOOL_CACHE_MAX_SIZE * 3) - 1;
}

int main(int argc, char **argv)
{
	char line[256];
	static unsigned int seq;
	int ret = rte_eal_init(argc, argv);
	if (ret < 0) {
		fprintf(stderr, "mempool_bench: rte_eal_init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	printf("ready lcores %u\n", rte_lcore_count());
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		unsigned int cores, cache, get, put, keep, ms, single;
		unsigned long long max = 0;
		int cpu = 0;
		char name[RTE_MEMPOOL_NAMESIZE];
		if (sscanf(line, "%u %u %u %u %u %u %u %llu %d", &cores, &cache, &get, &put, &keep, &ms,
			   &single, &max, &cpu) < 7) {
			printf("error bad line\n");
			fflush(stdout);
			continue;
		}
		if (cores == 0 || cores > rte_lcore_count() || keep == 0 || keep > MAX_KEEP ||
		    get == 0 || put == 0 || get > keep || put > keep || cache > RTE_MEMPOOL_CACHE_MAX_SIZE) {
			printf("error case out of range (lcores %u)\n", rte_lcore_count());
			fflush(stdout);
			continue;
		}
		snprintf(name, sizeof(name), "bench%u", seq++);
		struct rte_mempool *mp = rte_mempool_create(name, pool_size(cores), ELT_SIZE, cache, 0,
							    NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
		if (mp == NULL) {
			printf("error rte_mempool_create: %s\n", rte_strerror(rte_errno));
			fflush(stdout);
			continue;
		}
		bc = (struct bench_case){ mp, cores, get, put, keep, single, ms / 1000.0, max, cpu };
		started = 0;
		memset(rates, 0, sizeof(rates));
		memset(failed, 0, sizeof(failed));
		/* Lcores in order: the main one and cores - 1 workers. */
		unsigned int lc, n = 1;
		RTE_LCORE_FOREACH_WORKER(lc) {
			if (n >= cores)
				break;
			rte_eal_remote_launch(per_lcore, NULL, lc);
			n++;
		}
		per_lcore(NULL);
		rte_eal_mp_wait_lcore();
		double total = 0;
		int bad = 0;
		for (unsigned int i = 0; i < RTE_MAX_LCORE; i++) {
			total += rates[i];
			bad |= failed[i];
		}
		rte_mempool_free(mp);
		if (bad)
			printf("error pool ran empty\n");
		else
			printf("rate %.6e\n", total);
		fflush(stdout);
	}
	rte_eal_cleanup();
	return 0;
}
